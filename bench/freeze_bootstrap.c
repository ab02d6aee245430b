// The runtime of freeze_bench: connects to the Runtime API address it is given, then answers each
// byte it reads with one byte. With SPIN=1 a second thread spins forever (background work that
// continues after the "response", which freezing is meant to stop).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void* Spin(void* arg) {
  volatile unsigned long n = 0;
  for (;;) ++n;
  return arg;
}

int main(void) {
  const char* spin = getenv("SPIN");
  if (spin && spin[0] == '1') {
    pthread_t t;
    pthread_create(&t, NULL, Spin, NULL);
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(9001);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr*)&a, sizeof a) != 0) return 2;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char c;
  while (read(fd, &c, 1) == 1) {
    if (write(fd, &c, 1) != 1) return 3;
  }
  return 0;
}
