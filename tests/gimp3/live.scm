; Helpers of the GIMP 3 live-mode test (run-gimp3-live-test.sh), loaded
; after helpers.scm and gui.scm into the Script-Fu server.

; The pencil paints with the foreground colour of the user's context,
; which the Script-Fu server shares.
(define (set-colour colour) (gimp-context-set-foreground colour))
; a plain round brush: a pixmap brush would paint its own colours
(gimp-context-set-brush (car (gimp-brush-get-by-name "2. Hardness 100")))
