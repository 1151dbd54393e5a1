/* The export's #include <linux/slab.h>: all of it is in kernel_stub.h (this file is iopgfuzz's) */
#include "../kernel_stub.h"
