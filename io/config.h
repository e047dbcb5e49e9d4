/* config: the option table of fsnn and its INI reader (inih).
 *
 * One table (config.c) lists every key: name, type, default, range and one
 * line of documentation. The parser, `fsnn --help-config` and docs/config.md
 * all come from it. An unknown key, a repeated key or a bad value fails with
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

/* Applies one command-line override "section.key=value". */
int config_override(const char *arg, fsnn_cfg *cfg);

/* Checks relations between keys and derives values (model.net -> hidden
 * size). `origin` names the source in messages. */
int config_resolve(const char *origin, fsnn_cfg *cfg);

/* Writes the resolved configuration as INI text that config_load reads back
 * to the same values. */
int config_write(const fsnn_cfg *cfg, FILE *out);

/* Prints the option table: plain text, or Markdown when markdown != 0. */
void config_help(FILE *out, int markdown);

#endif
