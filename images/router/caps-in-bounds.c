/*
 * FRR's daemons ask for the capabilities they might ever use (zebra:
 * NET_ADMIN, NET_RAW and SYS_ADMIN, the last for network namespaces and
 * VRFs) and exit when the kernel refuses any of them. A lab container runs
 * without SYS_ADMIN, which routing without VRFs does not need: this library,
 * preloaded into frr.service, asks only for the capabilities the container's
 * bounding set still holds.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/capability.h>

int cap_set_proc(cap_t caps) {
    static int (*real)(cap_t);
    if (!real) real = (int (*)(cap_t))dlsym(RTLD_NEXT, "cap_set_proc");
    for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
        if (cap_get_bound(c) == 1) continue;
        cap_set_flag(caps, CAP_PERMITTED, 1, &c, CAP_CLEAR);
        cap_set_flag(caps, CAP_EFFECTIVE, 1, &c, CAP_CLEAR);
        cap_set_flag(caps, CAP_INHERITABLE, 1, &c, CAP_CLEAR);
    }
    return real(caps);
}
