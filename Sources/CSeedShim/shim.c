#include "CSeedShim.h"
int seed_shim_version(void) { return 1; }
