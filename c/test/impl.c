/* The implementation compiled as C11, linked into the C++ test (make test-c). */
#define FRAMERING_IMPLEMENTATION
#include "../framering.h"
