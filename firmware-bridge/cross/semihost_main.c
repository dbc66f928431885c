/*
 * main() for the test programs run bare-metal under qemu-system-riscv32 (build.sh): picolibc's
 * crt0 passes no arguments, so this reads the command line qemu was given
 * (-semihosting-config ...,arg=prog,arg=...) through semihosting and calls the program's own
 * main, compiled as program_main. Arguments are split on spaces (none of ours contain one).
 */
#include <semihost.h>
#include <stdlib.h>
#include <string.h>

int program_main(int argc, char **argv);

int main(void) {
  static char line[1024];
  static char *argv[16];
  int argc = 0;
  char *p;
  if (sys_semihost_get_cmdline(line, (int)sizeof line) != 0) return 2;
  for (p = strtok(line, " "); p != NULL && argc < 15; p = strtok(NULL, " ")) argv[argc++] = p;
  argv[argc] = NULL;
  return program_main(argc, argv);
}
