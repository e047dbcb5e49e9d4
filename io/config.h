/* config: the option table of fsnn and its INI reader (inih).
 *
 * One table (config_keys.c) lists every key: name, type, default, range
 * and one line of documentation. The parser, `fsnn --help-config` and
 * docs/config.md all come from it. An unknown key, a repeated key or a bad value fails with
 * "FILE:LINE: key 'section.key': what is wrong". */
#ifndef FSNN_CONFIG_H
#define FSNN_CONFIG_H

#include <stdio.h>

#include "cfg.h"

/* Sets every field to its documented default. */
void config_defaults(fsnn_cfg *cfg);

/* Applies the keys of INI file `path` over the current values of *cfg. */
int config_load(const char *path, fsnn_cfg *cfg);

/* The same for INI text in memory; `name` stands for the file in messages. */
int config_load_string(const char *name, const char *text, fsnn_cfg *cfg);

/* config_load and config_load_string for a run's stored configuration
 * (RUN_DIR/config.ini, a checkpoint's): one written before model.fidelity
 * existed reads as model.fidelity = fsnn, the variant it was trained with. */
int config_load_run(const char *path, fsnn_cfg *cfg);
int config_load_run_string(const char *name, const char *text, fsnn_cfg *cfg);

/* Applies one command-line override "section.key=value". */
int config_override(const char *arg, fsnn_cfg *cfg);

/* Sets `key` ("section.key") to `value` (without surrounding blanks) as an
 * INI line would. On failure returns non-zero, records no status and writes
 * into why[size] what is wrong, in the words of config_load ("key
 * 'train.lrr': unknown key (did you mean 'train.lr'?)"), so that the caller
 * can name the place (a sweep file's line). With value == NULL only the key
 * is checked. */
int config_set_key(const char *key, const char *value, fsnn_cfg *cfg, char *why, size_t size);

/* Checks relations between keys and derives values (model.net -> hidden
 * size). `origin` names the source in messages. */
int config_resolve(const char *origin, fsnn_cfg *cfg);

/* Writes the resolved configuration as INI text that config_load reads back
 * to the same values. */
int config_write(const fsnn_cfg *cfg, FILE *out);

/* Prints the option table: plain text, or Markdown when markdown != 0. */
void config_help(FILE *out, int markdown);

/* What is wrong with line `line` (1-based) of an INI text that inih
 * refused: an unclosed section header or a line of no known form, quoting
 * the line's start. For every INI reader of fsnn (config, sweep files). */
void config_syntax_why(const char *text, size_t text_len, int line, char *why, size_t size);

#endif
