#!/bin/sh
# The plug-in's help in the GIMP 2.10 GUI (TAP output): the help domain
# "sparse-regenerate" resolves the procedures' help ids to the installed
# user guide, and F1 in the plug-in's dialog opens it.
#   run-gimp-help-test.sh SOURCE_DIR BUILD_DIR SF_CLIENT_EXE
# GIMP runs on a private Xvfb display with a private profile and private
# XDG folders whose default application for HTML is a script that writes
# the URL it is given to a file (GIMP's web-browser plug-in opens pages with
# gtk_show_uri): so the test sees what a user's browser would be asked to
# open, section (#fragment) included.
# Driven through the Script-Fu server (sf_client) and xdotool, as
# run-gimp-undo-test.sh; run it alone (a display, a port, keystrokes).
set -u
src=$1 build=$2 client=$3
. "$(dirname "$0")/gui-lib.sh"
gui_init help
gimp_setup
mkdir -p "$work/xdg-data/applications"
plugin=$profile/plug-ins/sparse-regenerate
[ -f "$plugin/help/en/index.html" ] || bail "install-plugin.sh installed no help pages (python3-markdown?)"
cat > "$work/browser" <<SH
#!/bin/sh
echo "\$1" >> "$work/urls"
SH
chmod +x "$work/browser"
cat > "$work/xdg-data/applications/sige-recorder.desktop" <<DESKTOP
[Desktop Entry]
Type=Application
Name=URL recorder
Exec=$work/browser %u
MimeType=text/html;x-scheme-handler/file;
DESKTOP
printf '[Default Applications]\ntext/html=sige-recorder.desktop\nx-scheme-handler/file=sige-recorder.desktop\n' \
  > "$work/xdg-config/mimeapps.list"
# the help in the web browser (GIMP's own help browser is not installed)
printf '(help-browser web-browser)\n' > "$profile/gimprc"
# two remembered models of the same name: Recent tells them apart by folder
# (seen in the screenshot, $SIGE_SCREENSHOT_DIR/help-dialog-recent.png)
mkdir -p "$work/models/church" "$work/models/bedroom"
for m in church bedroom; do
  cp "$src/data/models/gaugan-demo.safetensors" "$work/models/$m/weights.safetensors"
done
printf '[settings]\nthreshold=0.45\nrecent=%s;%s;\n' "$work/models/church/weights.safetensors" \
  "$work/models/bedroom/weights.safetensors" > "$profile/sparse-regenerate.ini"

start_xvfb 300
start_gimp 280 -d XDG_DATA_HOME="$work/xdg-data" XDG_DATA_DIRS=/usr/local/share:/usr/share

# url_after N: the URL the browser got once it got more than N (20 s)
url_after() {
  deadline=$(($(date +%s) + 20))
  while [ "$(date +%s)" -lt $deadline ]; do
    if [ -f "$work/urls" ] && [ "$(wc -l < "$work/urls")" -gt "$1" ]; then
      sed -n "$(($1 + 1))p" "$work/urls"
      return 0
    fi
    sleep 0.2
  done
  echo "(no URL in 20 s)"
}
guide=file://$plugin/help/en/index.html
opens() { eq "$1" "$guide#$2"; } # URL SECTION

# 1. GIMP's help system resolves the ids (as the menu entries' F1 does)
sf 30 '(gimp-help "sparse-regenerate" "plug-in-sparse-regenerate")' > /dev/null
check "help id plug-in-sparse-regenerate opens the user guide's dialog section" \
  opens "$(url_after 0)" the-dialog
sf 30 '(gimp-help "sparse-regenerate" "plug-in-sparse-regenerate-reset")' > /dev/null
check "help id plug-in-sparse-regenerate-reset opens the user guide" opens "$(url_after 1)" use
check "the page the URL names exists" test -f "$plugin/help/en/index.html"
sed 's/^/# the browser got: /' "$work/urls" 2>/dev/null

# 2. F1 in the dialog: the dialog's own help id, in the plug-in's domain
img=$(sf 30 "(let* ((img (car (file-png-load RUN-NONINTERACTIVE \"$work/labels.png\" \"l\")))) (gimp-display-new img) img)")
"$client" "$port" 120 "(plug-in-sparse-regenerate RUN-INTERACTIVE $img (car (gimp-image-get-active-layer $img)) \"\" 0 0 -1)" \
  > "$work/dialog.out" 2>&1 &
dialog_pid=$!
bg_pids=$dialog_pid
dlg=''
deadline=$(($(date +%s) + 60))
while [ -z "$dlg" ] && [ "$(date +%s)" -lt $deadline ]; do
  dlg=$(xdotool search --onlyvisible --name '^Sparse Regenerate$' 2>/dev/null | head -n 1)
  [ -z "$dlg" ] && sleep 0.2
done
if [ -z "$dlg" ]; then
  not_ok "the dialog opens"
else
  ok "the dialog opens (window $dlg)"
  sleep 1 # GTK maps the window before it takes keys
  timeout 10 xdotool windowfocus --sync "$dlg" > /dev/null 2>&1
  xdotool key --clearmodifiers F1
  check "F1 in the dialog opens the user guide" opens "$(url_after 2)" the-dialog
  # the Recent list opened (Alt+R focuses it, Alt+Down opens it)
  timeout 10 xdotool windowfocus --sync "$dlg" > /dev/null 2>&1
  xdotool key --clearmodifiers alt+r
  sleep 0.3
  xdotool key --clearmodifiers alt+Down
  sleep 1
  if [ -n "${SIGE_SCREENSHOT_DIR:-}" ]; then
    import -window root "$SIGE_SCREENSHOT_DIR/help-dialog-recent.png" 2>/dev/null
  fi
  xdotool key --clearmodifiers Escape
  sleep 0.3
  timeout 10 xdotool windowfocus --sync "$dlg" > /dev/null 2>&1
  xdotool key --clearmodifiers Escape
fi
wait "$dialog_pid" 2>/dev/null
bg_pids=''
check "no 'user manual is not installed' message" sh -c "! grep -qi 'not installed' '$work/gimp.log'"
gimp_quit
gui_finish "help test: $(elapsed "$t_start") s in all"
