#include "process.h"

#include <sys/prctl.h>
#include <unistd.h>

int distrain_exit_with_parent(int signal_number) {
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, signal_number) != 0) return -1;
    // The parent may have died before prctl: then we were re-parented and no signal will come.
    return getppid() == parent ? 0 : -1;
}
