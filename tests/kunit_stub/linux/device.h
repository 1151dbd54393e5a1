/* The export's #include <linux/device.h>: all of it is in kernel_stub.h (this file is iopgfuzz's) */
#include "../kernel_stub.h"
