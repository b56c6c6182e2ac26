/*
 * Minimal start-up code for a Cortex-M4 under QEMU: vector table, .data/.bss set-up, FPU on, main(), and
 * semihosting for the output and the exit status (QEMU's -semihosting-config enable=on).
 */
#include <stdint.h>

#include "semihost.h"

extern uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end, __stack_top;
int main(void);

static void semihost_call(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
}

void semihost_print(const char *text)
{
    semihost_call(0x04u, text); /* SYS_WRITE0: a NUL-terminated string to the debugger's console */
}

void semihost_exit(int status)
{
    /* SYS_EXIT: ADP_Stopped_ApplicationExit (QEMU exits 0) or ADP_Stopped_RunTimeErrorUnknown (exits 1) */
    semihost_call(0x18u, (const void *)(uintptr_t)(status == 0 ? 0x20026u : 0x20023u));
    for (;;) {
    }
}

void reset_handler(void)
{
    const uint32_t *src = &__data_load;
    uint32_t *dst;

    for (dst = &__data_start; dst < &__data_end; ++dst) {
        *dst = *src++;
    }
    for (dst = &__bss_start; dst < &__bss_end; ++dst) {
        *dst = 0;
    }
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: full access to the FPU (CP10, CP11) */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    semihost_exit(main());
}

static void fault_handler(void)
{
    semihost_print("fault\n");
    semihost_exit(1);
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&__stack_top, reset_handler, fault_handler, fault_handler, fault_handler,
    fault_handler, fault_handler, 0, 0, 0, 0, fault_handler, fault_handler, 0, fault_handler, fault_handler,
};
