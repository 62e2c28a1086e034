/* fuzz_journal.c - libFuzzer target: replaying a state dir whose journal or
 * snapshot holds the input (after a valid header). Byte 0 chooses: bit 0, a
 * snapshot instead of a journal; bit 1, checksums made right first, so the
 * record contents (not only the checksum test) meet the fuzzer. A replay
 * must never crash, leak or load a record that does not check out. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/journal_int.h"
#include "../../common/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static int dirfd_ = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cbx_qmap_limits lim = { 1000, 1 << 20, 1000, 1000, 1 << 26, 100000, 60000000, 3600000000 };
    struct cbx_journal_stats st = { 0 };
    struct cbx_qmap *m;
    uint64_t gen = 1;
    char err[512], *buf;
    int fd;
    bool snapshot, seal;

    if (size < 1)
        return 0;
    if (dirfd_ < 0) {
        snprintf(dir, sizeof dir, "/tmp/cbx-fuzz-journal-XXXXXX");
        if (mkdtemp(dir) == NULL || (dirfd_ = open(dir, O_RDONLY | O_DIRECTORY)) < 0)
            abort();
        cbx_log_set_level(CBX_LOG_ERROR);
    }
    snapshot = data[0] & 1;
    seal = data[0] & 2;
    unlinkat(dirfd_, "snapshot", 0);
    unlinkat(dirfd_, "journal.1", 0);
    if ((buf = malloc(CBX_J_HDR + size)) == NULL)
        return 0;
    memcpy(buf, snapshot ? CBX_S_MAGIC : CBX_J_MAGIC, 8);
    memcpy(buf + 8, &gen, 8);
    memcpy(buf + CBX_J_HDR, data + 1, size - 1);
    if (seal)
        cbx_j_seal(buf + CBX_J_HDR, size - 1);
    fd = openat(dirfd_, snapshot ? "snapshot" : "journal.1", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || cbx_j_write_all(fd, buf, CBX_J_HDR + size - 1) != 0)
        abort();
    close(fd);
    free(buf);
    if ((m = cbx_qmap_create(&lim)) == NULL)
        return 0;
    cbx_j_replay(dirfd_, dir, m, &gen, &st, err, sizeof err);
    cbx_qmap_destroy(m);
    return 0;
}
