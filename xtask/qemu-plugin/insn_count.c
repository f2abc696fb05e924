/*
 * insn_count: a QEMU TCG plugin that counts the guest instructions a
 * program executes between marker system calls, for `cargo xtask bench
 * --board linux-aarch64` (Ember and tract measured the same way).
 *
 * The benchmarked program calls the (non-existent) system call 0x454d
 * ("EM") with x0 = 0 to start a region, 2 to end one lap inside it (x1 =
 * the lap's id, e.g. an op index) and 1 to end the region. Each region and
 * lap is reported on QEMU's log (`-d plugin`, `-D FILE`) as
 *   region <instructions>
 *   lap <id> <instructions>
 *
 * Counting: every translated block gets an inline add of its instruction
 * count, executed each time the block runs (QEMU's own basic-block
 * counting scheme; exact for single-threaded programs, which both
 * benchmarked engines are). A system call ends its block, so a marker's
 * reading includes the marker's own `svc`: both ends of a region are read
 * at the same point of a marker, and the difference is the instructions in
 * between plus one marker sequence.
 *
 * Debian's QEMU ships the plugin loader but not the API header, so the few
 * declarations used are written out below; they follow QEMU's stable
 * plugin ABI (version 1, QEMU 4.2 to 8.x).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef uint64_t qemu_plugin_id_t;

typedef struct {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    bool system_emulation;
    union {
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    };
} qemu_info_t;

struct qemu_plugin_tb;

enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

typedef void (*tb_trans_cb_t)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*syscall_cb_t)(qemu_plugin_id_t, unsigned int, int64_t, uint64_t,
                             uint64_t, uint64_t, uint64_t, uint64_t, uint64_t,
                             uint64_t, uint64_t);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, tb_trans_cb_t);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *,
                                              enum qemu_plugin_op, void *,
                                              uint64_t);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t, syscall_cb_t);
void qemu_plugin_outs(const char *);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define MARKER 0x454d

static uint64_t executed;   /* guest instructions so far */
static uint64_t region_at;  /* reading at the region's start */
static uint64_t lap_at;     /* reading at the last lap (or the start) */

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
                                             &executed,
                                             qemu_plugin_tb_n_insns(tb));
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num,
                       uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                       uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    char line[96];
    (void)id, (void)vcpu, (void)a3, (void)a4, (void)a5, (void)a6, (void)a7,
        (void)a8;
    if (num != MARKER) {
        return;
    }
    switch (a1) {
    case 0:
        region_at = lap_at = executed;
        return;
    case 1:
        snprintf(line, sizeof line, "region %llu\n",
                 (unsigned long long)(executed - region_at));
        break;
    case 2:
        snprintf(line, sizeof line, "lap %llu %llu\n", (unsigned long long)a2,
                 (unsigned long long)(executed - lap_at));
        lap_at = executed;
        break;
    default:
        return;
    }
    qemu_plugin_outs(line);
}

__attribute__((visibility("default"))) int
qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                    char **argv)
{
    (void)info, (void)argc, (void)argv;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    return 0;
}
