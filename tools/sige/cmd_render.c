#include "commands.h"
int sige_cmd_render(int argc, char **argv) { (void)argc; (void)argv; return 2; }
int sige_cmd_edit(int argc, char **argv) { (void)argc; (void)argv; return 2; }
