/* Output and exit through semihosting (QEMU -semihosting-config enable=on); see startup.c. */
#ifndef SEMIHOST_H
#define SEMIHOST_H

void semihost_print(const char *text);
void semihost_exit(int status);

#endif /* SEMIHOST_H */
