; End-to-end run of Sparse Regenerate on a Stable Diffusion checkpoint in
; GIMP 3 batch mode, loaded after e2e.scm in the same GIMP start: the cases
; of tests/gimp/e2e-sd.scm with GIMP 3's named arguments.  @SD_MODEL@ is a
; tiny SD checkpoint that make_sd_tiny made from the reference weights.
(define sd-model "sd:@SD_MODEL@")
(define (regen-sd img layer prompt)
  (catch -1 (car (plug-in-sparse-regenerate #:run-mode RUN-NONINTERACTIVE #:image img
                                            #:drawables (vector layer) #:model sd-model
                                            #:steps 4 #:strength 0.5 #:seed 3 #:prompt prompt
                                            #:guidance 7.5 #:sd-sampler "ddim"))))
(define (new-sd-image w h name)
  (let* ((img (car (gimp-image-new w h RGB)))
         (layer (car (gimp-layer-new img name w h RGB-IMAGE 100 LAYER-MODE-NORMAL))))
    (gimp-image-insert-layer img layer 0 0)
    img))

(gimp-context-set-antialias FALSE)
(gimp-context-set-feather FALSE)

(define img (new-sd-image 256 256 "picture"))
(define src (top-layer img))
(fill-rect img src '(96 128 176) 0 0 256 256)
(fill-rect img src '(120 104 88) 0 170 256 86)
(fill-rect img src '(200 188 160) 60 70 90 110)
(fill-rect img src '(40 110 50) 180 110 60 70)
(gimp-selection-none img)
(save img src "sd-orig.png")

; first run: the snapshot, a full img2img of the picture, in a new layer
(define out1 (regen-sd img src "a church"))
(say "sd-first-layer" (number->string out1))
(say "sd-first-layer-count" (n-layers img))
(when (> out1 0)
  (say "sd-first-name" (car (gimp-item-get-name out1)))
  (save img out1 "sd-first.png"))

; a stroke near the top left corner, then the sparse run
(fill-rect img src '(250 20 20) 16 16 16 16)
(gimp-selection-none img)
(save img src "sd-edited.png")
(define out2 (regen-sd img src "a church"))
(say "sd-second-layer" (number->string out2))
(say "sd-second-layer-count" (n-layers img))
(when (> out2 0) (save img out2 "sd-second.png"))

; another prompt: a message and a new snapshot into the same layer
(define out5 (regen-sd img src "a red barn"))
(say "sd-prompt-layer" (number->string out5))
(say "sd-prompt-layer-count" (n-layers img))
; the same again: nothing to do
(say "sd-old-proc-layer" (number->string (regen-sd img src "a red barn")))

; inpainting from a selection, then another selection (sparse)
(gimp-image-select-rectangle img CHANNEL-OP-REPLACE 192 192 32 32)
(define out3 (regen-sd img src "a church"))
(say "sd-inpaint-layer" (number->string out3))
; a boolean as #t/#f or as 1/0, whichever the dialect gives
(say "sd-inpaint-selection"
     (let ((e (car (gimp-selection-is-empty img))))
       (if (or (eq? e #t) (and (number? e) (= e 1))) "1" "0")))
(when (> out3 0) (save img out3 "sd-inpaint.png"))
(gimp-image-select-rectangle img CHANNEL-OP-REPLACE 40 200 24 24)
(define out4 (regen-sd img src "a church"))
(when (> out4 0) (save img out4 "sd-inpaint2.png"))
(gimp-selection-none img)

; a sampler name the procedure does not know: a calling error naming the
; argument and the names it takes; the layers stay as they were
(save img out1 "sd-pre-bad-sampler.png")
(say "sd-bad-sampler-result"
     (number->string (catch -1 (car (plug-in-sparse-regenerate
                                     #:run-mode RUN-NONINTERACTIVE #:image img
                                     #:drawables (vector src) #:model sd-model #:steps 4
                                     #:strength 0.5 #:seed 3 #:prompt "x"
                                     #:sd-sampler "euler")))))
(say "sd-bad-sampler-layer-count" (n-layers img))
(save img out1 "sd-post-bad-sampler.png")
; DPM-Solver++: a run (a new snapshot: the sampler changed)
(say "sd-dpm-result"
     (number->string (catch -1 (car (plug-in-sparse-regenerate
                                     #:run-mode RUN-NONINTERACTIVE #:image img
                                     #:drawables (vector src) #:model sd-model #:steps 4
                                     #:strength 0.5 #:seed 3 #:prompt "x"
                                     #:sd-sampler "dpmsolver++")))))
(gimp-image-delete img)

; a layer whose sides are not multiples of 8: an error naming the layer
(define odd (new-sd-image 100 100 "odd picture"))
(say "sd-odd-result" (number->string (regen-sd odd (top-layer odd) "a church")))
(say "sd-odd-layer-count" (n-layers odd))
(gimp-image-delete odd)
