; Helpers of the GUI live-mode test (run-gimp-live-test.sh), loaded after
; undo.scm (path, save, n-layers, state, regen) into the Script-Fu server.

; The pencil paints with the foreground colour of the user's context,
; which the Script-Fu server shares.
(define (set-colour colour) (gimp-context-set-foreground colour))
; a plain round brush: a pixmap brush (GIMP picks the clipboard's in a
; bare profile) would paint its own colours
(gimp-context-set-brush "2. Hardness 100")
(define (active img) (car (gimp-image-get-active-layer img)))
(define (proc-exists name) (car (gimp-procedural-db-proc-exists name)))
