; Helpers of the GIMP 3 end-to-end scripts (loaded first; GIMP 3's
; Script-Fu, default dialect).  @OUT@ is the test's folder.  Every result is
; a "RESULT name value" message that tests/gimp/run-gimp-tests.sh checks.
(define out-dir "@OUT@")
(define (path name) (string-append out-dir "/" name))
(define (say name value) (gimp-message (string-append "RESULT " name " " value)))
(define (n-layers img) (number->string (vector-length (car (gimp-image-get-layers img)))))
(define (selected-layer img) (vector-ref (car (gimp-image-get-selected-layers img)) 0))
(define (top-layer img) (vector-ref (car (gimp-image-get-layers img)) 0))

; GIMP 3 exports whole images, so a layer is saved from a duplicate of its
; image with every other layer removed (same precision and profile).
(define (save img layer name)
  (let* ((pos (car (gimp-image-get-item-position img layer)))
         (dup (car (gimp-image-duplicate img)))
         (layers (car (gimp-image-get-layers dup))))
    (let loop ((i 0))
      (if (< i (vector-length layers))
          (begin
            (if (not (= i pos)) (gimp-image-remove-layer dup (vector-ref layers i)))
            (loop (+ i 1)))))
    (gimp-file-save RUN-NONINTERACTIVE dup (path name) -1)
    (gimp-image-delete dup)))

(define (fill-rect img layer colour x y w h)
  (gimp-context-set-foreground colour)
  (gimp-image-select-rectangle img CHANNEL-OP-REPLACE x y w h)
  (gimp-drawable-edit-fill layer FILL-FOREGROUND))
