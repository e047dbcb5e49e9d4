/* fuzz_sweepq: the readers of jobs/sweepq on arbitrary bytes: squeue's
 * output, submissions.tsv, sbatch --parsable's answer and a run id list.
 * Each must succeed with consistent contents or fail with a message (a bad
 * squeue line is counted, not fatal); never crash or read out of bounds.
 * The first byte picks the reader and, for the tables, the number of runs;
 * the parsed queue and history then refine a few run states. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runstate.h"
#include "status.h"
#include "sweepq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void refine_all(const sweepq_history *h, const sweepq_queue *q, int n_runs) {
    static const char *const jobs[] = {"", "local", "1_0", "12_3", "7", "99_1"};
    for (int k = 0; k < RUNSTATE_UNKNOWN + 1; k++)
        for (size_t j = 0; j < sizeof jobs / sizeof jobs[0]; j++) {
            runstate st;
            memset(&st, 0, sizeof st);
            st.kind = (runstate_kind)k;
            st.has_file = *jobs[j] != '\0';
            strcpy(st.job, jobs[j]);
            sweepq_view v;
            sweepq_refine(&st, (int)j % (n_runs > 0 ? n_runs : 1), h, q, &v);
            if (memchr(v.note, '\0', sizeof v.note) == NULL) abort();
            if (v.kind == RUNSTATE_FINISHED && v.start) abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    log_set_level(LOG_ERROR); /* a warning per bad squeue line */
    if (size < 1) return 0;
    int pick = data[0] & 3, n_runs = 1 + (data[0] >> 2);
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (pick == 0) {
        sweepq_queue q;
        if (sweepq_queue_parse(text, len, &q) != 0) abort(); /* only out of memory fails */
        for (int i = 0; i < q.n; i++)
            if (q.e[i].job <= 0 || q.e[i].lo > q.e[i].hi || (q.e[i].lo < 0 && q.e[i].hi != -1))
                abort();
        refine_all(NULL, &q, n_runs);
        sweepq_queue_free(&q);
    } else if (pick == 1) {
        sweepq_history h;
        if (sweepq_history_parse("fuzz", text, len, n_runs, &h) == 0) {
            for (int i = 0; i < h.n; i++)
                for (int k = 0; k < h.subs[i].n_ids; k++)
                    if (h.subs[i].ids[k] >= n_runs ||
                        (k && h.subs[i].ids[k] <= h.subs[i].ids[k - 1]))
                        abort();
            sweepq_queue q = {NULL, 0, 0};
            refine_all(&h, &q, n_runs);
            sweepq_history_free(&h);
        } else if (status_message()[0] == '\0') {
            abort();
        }
    } else if (pick == 2) {
        long long job = 0;
        if (sweepq_parse_sbatch(text, len, &job) == 0 ? job <= 0 : status_message()[0] == '\0')
            abort();
    } else {
        char *s = malloc(len + 1);
        if (!s) return 0;
        memcpy(s, text, len);
        s[len] = '\0';
        int *ids = NULL, n = 0;
        if (sweepq_ids_parse("fuzz", s, n_runs, &ids, &n) == 0) {
            /* Written back and read again: the same ids. */
            char *back = NULL;
            int *again = NULL, m = -1;
            if (sweepq_ids_format(ids, n, &back) != 0 ||
                sweepq_ids_parse("fuzz", back, n_runs, &again, &m) != 0 || m != n ||
                memcmp(again, ids, (size_t)n * sizeof *ids) != 0)
                abort();
            free(again);
            free(back);
            free(ids);
        } else if (status_message()[0] == '\0') {
            abort();
        }
        free(s);
    }
    status_clear();
    return 0;
}
