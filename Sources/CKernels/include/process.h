#pragma once

// Asks the kernel to send `signal_number` to this process when its parent dies (prctl PR_SET_PDEATHSIG,
// kept across exec): a job started by `distrain supervise` stops with a killed supervisor instead of running
// on as an orphan. Returns 0, or -1 when the parent is already gone. (prctl is variadic: Swift cannot call it.)
int distrain_exit_with_parent(int signal_number);
