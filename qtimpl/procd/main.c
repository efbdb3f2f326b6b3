/* qtworker-procd: the helper program the qtworker library starts to run a
   process worker's function (see worker_create_process). All of it lives in
   the library, so the helper and the library always speak the same protocol. */
#include <qtworker.h>

int main(int argc, char **argv) { return worker_procd_main(argc, argv); }
