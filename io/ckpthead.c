/* ckpthead: the fsnn header in a checkpoint's HDF5 user block. */
#include "ckpthead.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h"   // defines: CKPT_HEADER_SIZE, CKPT_VERSION, CKPT_VERSION_OLDEST
#include "status.h" // defines: FAIL, CHECK

void ckpthead_hex(const unsigned char *md, char hex[65]) {
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static const char ckpthead_magic[] = "fsnn checkpoint\n";
#define CKPTHEAD_MAGIC_LEN (sizeof ckpthead_magic - 1)
static const unsigned char ckpthead_hdf5_signature[8] = {0x89, 'H',  'D',  'F',
                                                         '\r', '\n', 0x1a, '\n'};

/* The one valid header for (version, length, digest): a file's header must
 * equal it byte for byte, NUL padding included. */
static void ckpthead_make(char out[CKPT_HEADER_SIZE], unsigned long long version,
                          unsigned long long length, const char hex[65]) {
    memset(out, 0, CKPT_HEADER_SIZE);
    snprintf(out, CKPT_HEADER_SIZE, "%sformat_version %llu\nlength %llu\nsha256 %s\n",
             ckpthead_magic, version, length, hex);
}

/* Parses "name <decimal>\n" at *p of NUL-terminated text; advances *p. */
static int ckpthead_number(const char **p, const char *name, unsigned long long *v) {
    size_t n = strlen(name);
    if (strncmp(*p, name, n) != 0 || (*p)[n] != ' ') return 0;
    const char *q = *p + n + 1;
    unsigned long long x = 0;
    int digits = 0;
    for (; *q >= '0' && *q <= '9'; q++, digits++) {
        if (x > (~0ULL - 9) / 10) return 0;
        x = x * 10 + (unsigned long long)(*q - '0');
    }
    if (digits == 0 || *q != '\n') return 0;
    *v = x;
    *p = q + 1;
    return 1;
}

/* Parses "sha256 <64 lowercase hex digits>\n" at *p into hex. */
static int ckpthead_digest(const char **p, char hex[65]) {
    if (strncmp(*p, "sha256 ", 7) != 0) return 0;
    const char *q = *p + 7;
    for (int i = 0; i < 64; i++)
        if (!((q[i] >= '0' && q[i] <= '9') || (q[i] >= 'a' && q[i] <= 'f'))) return 0;
    if (q[64] != '\n') return 0;
    memcpy(hex, q, 64);
    hex[64] = '\0';
    *p = q + 65;
    return 1;
}

/* SHA-256 of bytes[n] as hex. */
static int ckpthead_sha256(const unsigned char *bytes, size_t n, char hex[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(bytes, n, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return FAIL("SHA-256 failed (OpenSSL)");
    ckpthead_hex(md, hex);
    return FSNN_OK;
}

/* Whether two digests in hex are equal. Every byte is looked at and no
 * libc comparison is called: libFuzzer's hooks on memcmp and strcmp would
 * otherwise hand the fuzzer the right digest of a mutated file, which then
 * reaches libhdf5 (that is fuzz_ckpt_sealed's job, not fuzz_ckpt_raw's). */
static int ckpthead_digest_equal(const char a[65], const char b[65]) {
    unsigned diff = 0;
    for (int i = 0; i < 64; i++)
        diff |= (unsigned)(unsigned char)a[i] ^ (unsigned)(unsigned char)b[i];
    return diff == 0;
}

int ckpthead_check(const char *path, const unsigned char *bytes, size_t size) {
    if (size == 0) return FAIL("%s: not an fsnn checkpoint (empty file)", path);
    size_t head = size < CKPTHEAD_MAGIC_LEN ? size : CKPTHEAD_MAGIC_LEN;
    if (memcmp(bytes, ckpthead_magic, head) != 0) {
        if (size >= sizeof ckpthead_hdf5_signature &&
            !memcmp(bytes, ckpthead_hdf5_signature, sizeof ckpthead_hdf5_signature))
            return FAIL("%s: not an fsnn checkpoint: an HDF5 file without the fsnn header "
                        "(checkpoints of format version 1 had none; this fsnn reads version %d)",
                        path, CKPT_VERSION);
        return FAIL("%s: not an fsnn checkpoint (its first bytes are not the fsnn header)", path);
    }
    if (size < CKPT_HEADER_SIZE)
        return FAIL("%s: truncated: %zu bytes, less than the %d-byte header", path, size,
                    CKPT_HEADER_SIZE);
    char text[CKPT_HEADER_SIZE + 1];
    memcpy(text, bytes, CKPT_HEADER_SIZE);
    text[CKPT_HEADER_SIZE] = '\0';
    const char *p = text + CKPTHEAD_MAGIC_LEN;
    unsigned long long version = 0, length = 0;
    char hex[65], want[CKPT_HEADER_SIZE];
    if (!ckpthead_number(&p, "format_version", &version))
        return FAIL("%s: damaged header (format_version line)", path);
    if (version < CKPT_VERSION_OLDEST || version > CKPT_VERSION)
        return FAIL("%s: checkpoint format version %llu; this fsnn reads versions %d to %d", path,
                    version, CKPT_VERSION_OLDEST, CKPT_VERSION);
    if (!ckpthead_number(&p, "length", &length) || !ckpthead_digest(&p, hex))
        return FAIL("%s: damaged header (length or sha256 line)", path);
    ckpthead_make(want, version, length, hex);
    if (memcmp(want, bytes, CKPT_HEADER_SIZE) != 0)
        return FAIL("%s: damaged header (bytes after its last line)", path);
    if (length != size)
        return length > size
                   ? FAIL("%s: truncated: %zu bytes; the header says %llu", path, size, length)
                   : FAIL("%s: damaged: %zu bytes; the header says %llu", path, size, length);
    char got[65];
    CHECK(ckpthead_sha256(bytes + CKPT_HEADER_SIZE, size - CKPT_HEADER_SIZE, got));
    if (!ckpthead_digest_equal(got, hex))
        return FAIL("%s: damaged: the SHA-256 of the bytes after the header is %.16s..., the "
                    "header says %.16s...",
                    path, got, hex);
    return FSNN_OK;
}

int ckpthead_seal_fd(int fd, const char *path) {
    struct stat st;
    if (fstat(fd, &st) != 0) return FAIL("%s: cannot stat: %s", path, strerror(errno));
    unsigned char sig[sizeof ckpthead_hdf5_signature];
    if (st.st_size < CKPT_HEADER_SIZE + (off_t)sizeof sig ||
        pread(fd, sig, sizeof sig, CKPT_HEADER_SIZE) != (ssize_t)sizeof sig ||
        memcmp(sig, ckpthead_hdf5_signature, sizeof sig) != 0)
        return FAIL("%s: no HDF5 signature after a %d-byte user block; not sealing it", path,
                    CKPT_HEADER_SIZE);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    unsigned char buf[1 << 16];
    off_t off = CKPT_HEADER_SIZE;
    while (ok && off < st.st_size) {
        size_t want =
            (size_t)(st.st_size - off) < sizeof buf ? (size_t)(st.st_size - off) : sizeof buf;
        ssize_t r = pread(fd, buf, want, off);
        if (r < 0 && errno == EINTR) continue;
        ok = r > 0 && EVP_DigestUpdate(ctx, buf, (size_t)r) == 1;
        off += r > 0 ? r : 0;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (ok) ok = EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 32;
    EVP_MD_CTX_free(ctx);
    if (!ok) return FAIL("%s: cannot read it back to compute its SHA-256", path);
    char hex[65], header[CKPT_HEADER_SIZE];
    ckpthead_hex(md, hex);
    ckpthead_make(header, CKPT_VERSION, (unsigned long long)st.st_size, hex);
    if (pwrite(fd, header, sizeof header, 0) != (ssize_t)sizeof header)
        return FAIL("%s: cannot write the header: %s", path, strerror(errno));
    return FSNN_OK;
}
