/*
 * Start-up and output for probe.c in qemu-system-xtensa -M sim -cpu lx106 (build.sh): picolibc
 * has no semihosting for Xtensa, so this sets the stack, calls main, and writes stdout/stderr
 * and the exit status through qemu's simcall interface (xtensa-semi: a2 = call, a3..a5 = args).
 */
#include <stdio.h>

#define SYS_EXIT 1
#define SYS_WRITE 4

int main(void);

static int simcall(int call, int a, int b, int c) {
  register int a2 __asm__("a2") = call;
  register int a3 __asm__("a3") = a;
  register int a4 __asm__("a4") = b;
  register int a5 __asm__("a5") = c;
  __asm__ volatile("simcall" : "+r"(a2) : "r"(a3), "r"(a4), "r"(a5) : "memory");
  return a2;
}

static int sim_putc(char c, FILE *f) {
  (void)f;
  simcall(SYS_WRITE, 1, (int)&c, 1);
  return (unsigned char)c;
}

static FILE sim_stdio = FDEV_SETUP_STREAM(sim_putc, NULL, NULL, _FDEV_SETUP_WRITE);
FILE *const stdin = &sim_stdio;
FILE *const stdout = &sim_stdio;
FILE *const stderr = &sim_stdio;

/* abort() (callbacks.c) ends here: exit status 134, as a signal would give. */
void _exit(int status);
int getpid(void);
int kill(int pid, int sig);

void _exit(int status) {
  for (;;) simcall(SYS_EXIT, status, 0, 0);
}

int getpid(void) { return 1; }

int kill(int pid, int sig) {
  (void)pid;
  _exit(128 + sig);
}

/* At the reset vector: jump to _start (l32r reads a literal placed before it). */
__asm__(".section .reset.text, \"ax\"\n"
        "  j 1f\n"
        "  .align 4\n"
        "2: .word _start\n"
        "1: l32r a0, 2b\n"
        "  jx a0\n");

/* The stack at the top of dataram0 (lx106-sim.ld), then main, then its status to qemu. */
__asm__(".section .text._start, \"ax\"\n"
        ".global _start\n"
        ".align 4\n"
        "_start:\n"
        "  movi a1, __stack\n"
        "  call0 main\n"
        "  mov a3, a2\n"
        "  movi a2, 1\n"
        "  simcall\n"
        "1: j 1b\n");

/*
 * The ESP8266 has these in ROM and Debian's lx106 libgcc leaves them out (build.sh); in the
 * emulator there is no ROM, so here they are, in 32-bit arithmetic only.
 */
typedef unsigned long long u64;
typedef unsigned int u32;
u64 __muldi3(u64 a, u64 b);
u64 __udivdi3(u64 n, u64 d);
u64 __umoddi3(u64 n, u64 d);
u32 __udivsi3(u32 n, u32 d);
u32 __umodsi3(u32 n, u32 d);
int __divsi3(int n, int d);

static u64 mul32x32(u32 a, u32 b) {
  u32 al = a & 0xffff, ah = a >> 16, bl = b & 0xffff, bh = b >> 16;
  u32 ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  u32 mid = (ll >> 16) + (lh & 0xffff) + (hl & 0xffff);
  u32 lo = (ll & 0xffff) | (mid << 16);
  u32 hi = hh + (lh >> 16) + (hl >> 16) + (mid >> 16);
  return ((u64)hi << 32) | lo;
}

u64 __muldi3(u64 a, u64 b) {
  u32 al = (u32)a, ah = (u32)(a >> 32), bl = (u32)b, bh = (u32)(b >> 32);
  u64 r = mul32x32(al, bl);
  return r + ((u64)(al * bh + ah * bl) << 32);
}

static u64 udivmod(u64 n, u64 d, u64 *rem) {
  u64 q = 0, r = 0;
  int i;
  for (i = 63; i >= 0; i--) {
    r = (r << 1) | ((n >> i) & 1);
    if (r >= d) {
      r -= d;
      q |= (u64)1 << i;
    }
  }
  *rem = r;
  return q;
}

u64 __udivdi3(u64 n, u64 d) {
  u64 r;
  return udivmod(n, d, &r);
}

u64 __umoddi3(u64 n, u64 d) {
  u64 r;
  udivmod(n, d, &r);
  return r;
}

static u32 udivmod32(u32 n, u32 d, u32 *rem) {
  u32 q = 0, r = 0;
  int i;
  for (i = 31; i >= 0; i--) {
    r = (r << 1) | ((n >> i) & 1);
    if (r >= d) {
      r -= d;
      q |= 1u << i;
    }
  }
  *rem = r;
  return q;
}

u32 __udivsi3(u32 n, u32 d) {
  u32 r;
  return udivmod32(n, d, &r);
}

u32 __umodsi3(u32 n, u32 d) {
  u32 r;
  udivmod32(n, d, &r);
  return r;
}

int __divsi3(int n, int d) {
  u32 r, q = udivmod32(n < 0 ? 0u - (u32)n : (u32)n, d < 0 ? 0u - (u32)d : (u32)d, &r);
  return (n < 0) != (d < 0) ? -(int)q : (int)q;
}
