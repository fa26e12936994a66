; End-to-end run of Sparse Regenerate in GIMP batch mode.  @OUT@ is the
; test's folder.  Every result is a "RESULT name value" message that
; run-gimp-tests.sh checks; the image is always deleted (else GIMP reports
; leaked GeglBuffers).
(define out-dir "@OUT@")
(define (path name) (string-append out-dir "/" name))
(define (say name value) (gimp-message (string-append "RESULT " name " " value)))
(define (n-layers img) (number->string (car (gimp-image-get-layers img))))
(define (save img drawable name)
  (file-png-save2 RUN-NONINTERACTIVE img drawable (path name) name 0 9 0 0 0 0 0 0 0))
(define (regen img layer model)
  (catch -1 (car (plug-in-sparse-regenerate RUN-NONINTERACTIVE img layer model 0 0 -1))))

; no model chosen (first, before any run makes one the last used): a
; picture gets the shipped church DDPM, a label map (below) the street GauGAN
(define pic (car (file-png-load RUN-NONINTERACTIVE (path "church256.png") "church256.png")))
(define out-default (catch -1 (car (plug-in-sparse-regenerate RUN-NONINTERACTIVE pic
                                      (car (gimp-image-get-active-layer pic)) "" 2 0.1 7))))
(say "picture-default-result" (number->string out-default))
(when (> out-default 0) (say "picture-default-name" (car (gimp-item-get-name out-default))))
(gimp-image-delete pic)

; every step at top level, so that a failing step cannot skip the cleanup
(define img (car (file-png-load RUN-NONINTERACTIVE (path "labels.png") "labels.png")))
(define src (car (gimp-image-get-active-layer img)))

; first run: full pass, new layer above the source
(define out1 (regen img src ""))
(say "first-layer" (number->string out1))
(say "first-layer-count" (n-layers img))
(when (> out1 0)
  (say "first-name" (car (gimp-item-get-name out1)))
  (say "first-position" (number->string (car (gimp-image-get-item-position img out1))))
  (save img out1 "first.png"))

; the edit: a car-coloured rectangle painted with Script-Fu (with -d GIMP
; loads no brushes); another selection stays active during the second run,
; which must neither clip the output to it nor change it
(gimp-context-set-foreground '(0 0 142))
(gimp-context-set-antialias FALSE)
(gimp-context-set-feather FALSE)
(gimp-image-select-rectangle img CHANNEL-OP-REPLACE 150 150 60 30)
(gimp-edit-fill src FILL-FOREGROUND)
(gimp-image-select-rectangle img CHANNEL-OP-REPLACE 300 40 20 20)
(save img src "edited.png")

; second run: sparse, into the same layer
(define out2 (regen img src ""))
(say "second-layer" (number->string out2))
(say "second-layer-count" (n-layers img))
(say "selection-after"
     (apply string-append
            (map (lambda (v) (string-append (number->string v) ",")) (cdr (gimp-selection-bounds img)))))
(gimp-selection-none img)
(when (> out2 0) (save img out2 "second.png"))

; nothing changed: nothing to compute, nothing written
(regen img src "")
(when (> out2 0) (save img out2 "unchanged.png"))

; reset: the next run is a full pass into the same output layer
(plug-in-sparse-regenerate-reset RUN-NONINTERACTIVE img src)
(define out3 (regen img src ""))
(say "reset-layer" (number->string out3))
(say "reset-layer-count" (n-layers img))
(when (> out3 0) (save img out3 "after-reset.png"))

; a corrupt model file: an error, no new layer, the output untouched
(say "corrupt-result" (number->string (regen img src (path "corrupt.safetensors"))))
(say "corrupt-layer-count" (n-layers img))
(when (> out3 0) (save img out3 "after-corrupt.png"))
(gimp-image-delete img)

; a layer of the wrong size: an error naming the size, no new layer
(define small (car (file-png-load RUN-NONINTERACTIVE (path "labels.png") "labels.png")))
(gimp-image-scale small 256 128)
(say "wrong-size-result"
     (number->string (regen small (car (gimp-image-get-active-layer small)) "")))
(say "wrong-size-layer-count" (n-layers small))
(gimp-image-delete small)

; a photo taken for a label map: refused before any pass, saying how many
; pixels are far from the palette; no new layer
(define photo (car (file-png-load RUN-NONINTERACTIVE (path "photo.png") "photo.png")))
(say "photo-result" (number->string (regen photo (car (gimp-image-get-active-layer photo))
                                           (path "street.safetensors"))))
(say "photo-layer-count" (n-layers photo))
(gimp-image-delete photo)

; an indexed label map (the natural format of one): accepted; the image
; becomes RGB in the run's undo step, the labels' colours unchanged
(define idx (car (file-png-load RUN-NONINTERACTIVE (path "labels.png") "labels.png")))
(gimp-image-convert-indexed idx CONVERT-DITHER-NONE CONVERT-PALETTE-GENERATE 256 FALSE FALSE "")
(say "indexed-type-before" (number->string (car (gimp-image-base-type idx))))
(define idx-src (car (gimp-image-get-active-layer idx)))
(define idx-out (regen idx idx-src ""))
(say "indexed-result" (number->string idx-out))
(say "indexed-type-after" (number->string (car (gimp-image-base-type idx))))
(say "indexed-layer-count" (n-layers idx))
(save idx idx-src "indexed-source.png")
(when (> idx-out 0) (save idx idx-out "indexed-out.png"))
(gimp-image-delete idx)
; the image types GIMP enables the menu entries for (the query matches the
; menu labels: "Sparse Regenerate..." and "Reset Sparse Regenerate Snapshot")
(define query (gimp-plugins-query "Sparse Regenerate"))
(say "image-types-count" (number->string (car query)))
(define (as-list v) (if (vector? v) (vector->list v) v))
(say "image-types"
     (apply string-append
            (map (lambda (t) (string-append t ";")) (as-list (list-ref query 7)))))
