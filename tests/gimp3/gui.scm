; Helpers of the GIMP 3 GUI test (run-gimp3-gui-test.sh), loaded into the
; Script-Fu server of the running GIMP after helpers.scm (path, save,
; fill-rect, n-layers, selected-layer, top-layer).  @OUT@ is the test's
; folder as GIMP sees it.

; messages to stderr (the log), never a dialog that could take the focus
(gimp-message-set-handler CONSOLE)
(gimp-context-set-antialias FALSE)
(gimp-context-set-feather FALSE)

(define (layer-ids img) (vector->list (car (gimp-image-get-layers img))))
(define (selected-ids img) (vector->list (car (gimp-image-get-selected-layers img))))

; A painted edit as one undo step, like one stroke in the GUI; the
; selection is none after it, as after a brush stroke.
(define (edit img layer colour x y w h)
  (gimp-image-undo-group-start img)
  (fill-rect img layer colour x y w h)
  (gimp-selection-none img)
  (gimp-image-undo-group-end img)
  (gimp-displays-flush))

; The DDPM case's picture, as in tests/gimp/undo.scm: flat shapes (the
; weights are random), built with undo off.  Returns (image layer).
(define (church-image)
  (let* ((img (car (gimp-image-new 256 256 RGB)))
         (layer (car (gimp-layer-new img "church" 256 256 RGB-IMAGE 100 LAYER-MODE-NORMAL))))
    (gimp-image-undo-disable img)
    (gimp-image-insert-layer img layer 0 0)
    (fill-rect img layer '(96 128 176) 0 0 256 256)
    (fill-rect img layer '(120 104 88) 0 170 256 86)
    (fill-rect img layer '(200 188 160) 60 70 90 110)
    (fill-rect img layer '(80 60 50) 95 120 20 60)
    (fill-rect img layer '(40 110 50) 180 110 60 70)
    (fill-rect img layer '(230 220 120) 20 20 24 24)
    (gimp-selection-none img)
    (gimp-image-undo-enable img)
    (gimp-image-clean-all img)
    (list img layer)))

(define (regen-ddpm img layer model steps strength seed)
  (car (plug-in-sparse-regenerate #:run-mode RUN-NONINTERACTIVE #:image img
                                  #:drawables (vector layer) #:model model
                                  #:steps steps #:strength strength #:seed seed)))
