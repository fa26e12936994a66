; Helpers of the GUI undo test (run-gimp-undo-test.sh), loaded into the
; Script-Fu server of a running GIMP; the script then sends one command per
; step and a real Ctrl+Z between them.  @OUT@ is the test's folder.
(define out-dir "@OUT@")
(define (path name) (string-append out-dir "/" name))
(define (save img drawable name)
  (file-png-save2 RUN-NONINTERACTIVE img drawable (path name) name 0 9 0 0 0 0 0 0 0))
(define (n-layers img) (car (gimp-image-get-layers img)))

; The state of an image, to notice when GIMP has acted on a keystroke: its
; layer count and a fingerprint (mean and deviation of each channel) of the
; source's and the output's pixels, or "gone".  The checks themselves
; compare exported PNGs; this only has to change when the image does, and
; be quick (no plug-in runs).  gimp-drawable-histogram counts only the
; selected pixels, so it runs on a copy of the layer in an image of its own
; that has no selection (and no undo).
(define (fingerprint d)
  (if (and (> d 0) (= (car (gimp-item-is-valid d)) TRUE))
      (let* ((probe (car (gimp-image-new (car (gimp-drawable-width d)) (car (gimp-drawable-height d)) RGB)))
             (copy (begin (gimp-image-undo-disable probe)
                          (car (gimp-layer-new-from-drawable d probe)))))
        (gimp-image-insert-layer probe copy 0 0)
        (gimp-layer-set-offsets copy 0 0)
        (let ((fp (map (lambda (c) (let ((h (gimp-drawable-histogram copy c 0.0 1.0))) (list (car h) (cadr h))))
                       (list HISTOGRAM-RED HISTOGRAM-GREEN HISTOGRAM-BLUE))))
          (gimp-image-delete probe)
          fp))
      "gone"))
(define (state img src out)
  (list (n-layers img) (fingerprint src) (fingerprint out)))

(define (fill-rect img layer colour x y w h)
  (gimp-context-set-foreground colour)
  (gimp-image-select-rectangle img CHANNEL-OP-REPLACE x y w h)
  (gimp-edit-fill layer FILL-FOREGROUND))
; A painted edit as one undo step, like one stroke in the GUI; it leaves
; another rectangle selected, as a user might, which the plug-in's runs must
; neither clip their output to nor change.
(define (edit img layer colour x y w h sx sy sw sh)
  (gimp-image-undo-group-start img)
  (fill-rect img layer colour x y w h)
  (gimp-image-select-rectangle img CHANNEL-OP-REPLACE sx sy sw sh)
  (gimp-image-undo-group-end img)
  (gimp-displays-flush))
(define (selection img) (cdr (gimp-selection-bounds img)))
(define (regen img layer model steps strength seed)
  (let ((out (car (plug-in-sparse-regenerate RUN-NONINTERACTIVE img layer model steps strength seed))))
    (gimp-displays-flush)
    out))

; messages to stderr (the log), never a dialog that could take the focus
(gimp-message-set-handler CONSOLE)
(gimp-context-set-antialias FALSE)
(gimp-context-set-feather FALSE)

; The DDPM case's picture, as in e2e-ddpm.scm: flat shapes (the weights are
; random), built with undo off so that the undo stack starts empty.
; Returns (image layer).
(define (church-image)
  (let* ((img (car (gimp-image-new 256 256 RGB)))
         (layer (car (gimp-layer-new img 256 256 RGB-IMAGE "church" 100 LAYER-MODE-NORMAL))))
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
