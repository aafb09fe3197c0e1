// Glibc declares copy_file_range only under _GNU_SOURCE, which Swift's Glibc module lacks;
// this one typed wrapper over the system call is the whole shim.
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/// copy_file_range(in, &offset, out, NULL, length, 0): copies from `in` at *offset (advanced)
/// to `out` at its file offset, inside the kernel. -1 and errno as the system call's.
static inline long jobstore_copy_file_range(int in, long long *offset, int out, size_t length) {
    return syscall(SYS_copy_file_range, in, offset, out, (void *)0, length, 0u);
}
