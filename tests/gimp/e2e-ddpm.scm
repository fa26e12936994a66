; End-to-end run of Sparse Regenerate on a DDPM model (SDEdit) in GIMP batch
; mode, loaded after e2e.scm in the same GIMP start.  @OUT@ is the test's
; folder, @DDPM_MODEL@ the tiny church UNet of the reference vectors.  Few
; steps and a low strength keep the passes short: 3 steps at strength 0.2
; (noise level 200) are 3 UNet evaluations per run.
(define out-dir "@OUT@")
(define ddpm-model "@DDPM_MODEL@")
(define (path name) (string-append out-dir "/" name))
(define (say name value) (gimp-message (string-append "RESULT " name " " value)))
(define (n-layers img) (number->string (car (gimp-image-get-layers img))))
(define (save img drawable name)
  (file-png-save2 RUN-NONINTERACTIVE img drawable (path name) name 0 9 0 0 0 0 0 0 0))
(define (regen img layer steps strength seed)
  (catch -1 (car (plug-in-sparse-regenerate RUN-NONINTERACTIVE img layer ddpm-model
                                            steps strength seed))))
(define (fill-rect img layer colour x y w h)
  (gimp-context-set-foreground colour)
  (gimp-image-select-rectangle img CHANNEL-OP-REPLACE x y w h)
  (gimp-edit-fill layer FILL-FOREGROUND))

(gimp-context-set-antialias FALSE)
(gimp-context-set-feather FALSE)

; the original: a deterministic picture of flat shapes (any image will do:
; the weights are random), saved for sige edit
(define img (car (gimp-image-new 256 256 RGB)))
(define src (car (gimp-layer-new img 256 256 RGB-IMAGE "church" 100 LAYER-MODE-NORMAL)))
(gimp-image-insert-layer img src 0 0)
(fill-rect img src '(96 128 176) 0 0 256 256)
(fill-rect img src '(120 104 88) 0 170 256 86)
(fill-rect img src '(200 188 160) 60 70 90 110)
(fill-rect img src '(80 60 50) 95 120 20 60)
(fill-rect img src '(40 110 50) 180 110 60 70)
(fill-rect img src '(230 220 120) 20 20 24 24)
(gimp-selection-none img)
(save img src "ddpm-orig.png")

; first run: the snapshot; its output is the image itself, in a new layer
(define out1 (regen img src 3 0.2 7))
(say "ddpm-first-layer" (number->string out1))
(say "ddpm-first-layer-count" (n-layers img))
(when (> out1 0)
  (say "ddpm-first-name" (car (gimp-item-get-name out1)))
  (save img out1 "ddpm-first.png"))

; the edit: a red rectangle painted on the source
(fill-rect img src '(200 30 30) 150 140 40 30)
(gimp-selection-none img)
(save img src "ddpm-edited.png")

; second run: sparse denoising into the same layer
(define out2 (regen img src 3 0.2 7))
(say "ddpm-second-layer" (number->string out2))
(say "ddpm-second-layer-count" (n-layers img))
(when (> out2 0) (save img out2 "ddpm-second.png"))

; a second edit: only the engine's changed rectangle is written
(fill-rect img src '(250 250 250) 30 200 16 16)
(gimp-selection-none img)
(define out3 (regen img src 3 0.2 -1))
(say "ddpm-third-layer" (number->string out3))
(when (> out3 0) (save img out3 "ddpm-third.png"))

; other steps: the caches are void, a message and a new snapshot (2 steps
; of DPM-Solver++ are one UNet evaluation) whose output is the image again
(define out4 (regen img src 2 0.2 -1))
(say "ddpm-resnap-layer" (number->string out4))
(say "ddpm-resnap-layer-count" (n-layers img))
(when (> out4 0) (save img out4 "ddpm-resnap.png"))
(save img src "ddpm-edited2.png")

; settings the sampler cannot use: an error naming the fix, nothing run
(say "ddpm-bad-steps-result" (number->string (regen img src 1 0.2 -1)))
(gimp-image-delete img)

; a layer of the wrong size: an error naming both sizes, no new layer
(define small (car (gimp-image-new 128 96 RGB)))
(define small-src (car (gimp-layer-new small 128 96 RGB-IMAGE "small" 100 LAYER-MODE-NORMAL)))
(gimp-image-insert-layer small small-src 0 0)
(say "ddpm-wrong-size-result" (number->string (regen small small-src 3 0.2 7)))
(say "ddpm-wrong-size-layer-count" (n-layers small))
(gimp-image-delete small)

