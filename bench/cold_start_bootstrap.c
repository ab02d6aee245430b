/* The bootstrap cold_start_bench starts in every variant: a static binary that says "ready" on
 * stdout and exits, so what is measured is the launcher, not a language runtime. */
#include <unistd.h>

int main(void) {
  static const char msg[] = "ready\n";
  return write(1, msg, sizeof msg - 1) == (ssize_t)(sizeof msg - 1) ? 0 : 1;
}
