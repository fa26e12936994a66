; End-to-end run of Sparse Regenerate on a Stable Diffusion checkpoint in
; GIMP batch mode, loaded after e2e.scm in the same GIMP start.  @OUT@ is the
; test's folder, @SD_MODEL@ a tiny SD checkpoint that make_sd_tiny made from
; the reference weights.  4 DDIM steps at strength 0.5 are 2 denoising steps
; (2 UNet passes each, guidance on) per img2img run.
(define out-dir "@OUT@")
(define sd-model "sd:@SD_MODEL@")
(define (path name) (string-append out-dir "/" name))
(define (say name value) (gimp-message (string-append "RESULT " name " " value)))
(define (n-layers img) (number->string (car (gimp-image-get-layers img))))
(define (save img drawable name)
  (file-png-save2 RUN-NONINTERACTIVE img drawable (path name) name 0 9 0 0 0 0 0 0 0))
(define (regen-sd img layer prompt)
  (catch -1 (car (plug-in-sparse-regenerate-sd RUN-NONINTERACTIVE img layer sd-model
                                               4 0.5 3 prompt "" 7.5 "ddim"))))
(define (fill-rect img layer colour x y w h)
  (gimp-context-set-foreground colour)
  (gimp-image-select-rectangle img CHANNEL-OP-REPLACE x y w h)
  (gimp-edit-fill layer FILL-FOREGROUND))

(gimp-context-set-antialias FALSE)
(gimp-context-set-feather FALSE)

(define img (car (gimp-image-new 256 256 RGB)))
(define src (car (gimp-layer-new img 256 256 RGB-IMAGE "picture" 100 LAYER-MODE-NORMAL)))
(gimp-image-insert-layer img src 0 0)
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

; the seven-argument procedure with an SD checkpoint: the remembered
; prompt (the last run's), and nothing to do
(define out6 (catch -1 (car (plug-in-sparse-regenerate RUN-NONINTERACTIVE img src sd-model 4 0.5 3))))
(say "sd-old-proc-layer" (number->string out6))
; inpainting from a selection: a new (inpainting) snapshot, the selection
; inpainted, the picture elsewhere; the selection stays
(gimp-image-select-rectangle img CHANNEL-OP-REPLACE 192 192 32 32)
(define out3 (regen-sd img src "a church"))
(say "sd-inpaint-layer" (number->string out3))
(say "sd-inpaint-selection" (number->string (car (gimp-selection-is-empty img))))
(when (> out3 0) (save img out3 "sd-inpaint.png"))
; another selection: sparse
(gimp-image-select-rectangle img CHANNEL-OP-REPLACE 40 200 24 24)
(define out4 (regen-sd img src "a church"))
(when (> out4 0) (save img out4 "sd-inpaint2.png"))
(gimp-selection-none img)

; a sampler name the procedure does not know: a calling error; the layers
; stay as they were
(save img out1 "sd-pre-bad-sampler.png")
(say "sd-bad-sampler-result"
     (number->string (catch -1 (car (plug-in-sparse-regenerate-sd RUN-NONINTERACTIVE img src
                                                                  sd-model 4 0.5 3 "x" "" 7.5 "euler")))))
(say "sd-bad-sampler-layer-count" (n-layers img))
(save img out1 "sd-post-bad-sampler.png")
; DPM-Solver++: a run (a new snapshot: the sampler changed)
(say "sd-dpm-result"
     (number->string (catch -1 (car (plug-in-sparse-regenerate-sd RUN-NONINTERACTIVE img src
                                                                  sd-model 4 0.5 3 "x" "" 7.5 "dpmsolver++")))))
(gimp-image-delete img)

; a layer whose sides are not multiples of 8: an error naming the layer
(define odd (car (gimp-image-new 100 100 RGB)))
(define odd-src (car (gimp-layer-new odd 100 100 RGB-IMAGE "odd picture" 100 LAYER-MODE-NORMAL)))
(gimp-image-insert-layer odd odd-src 0 0)
(say "sd-odd-result" (number->string (regen-sd odd odd-src "a church")))
(say "sd-odd-layer-count" (n-layers odd))
(gimp-image-delete odd)
