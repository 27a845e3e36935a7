"""``candidate_features``' columns of a request batch, ``anchor_items``' search, the MMR
walk of a request of a few queries (``rerank.few_queries``), a request's recent and excluded
rows (``sparse_rows.csr_of_rows``), its id lookups (``id_table.IdTable.find``), and retrieval's
rows: the static sources' heads (``static_proposals``), ``merge``, ``Candidates.rescored`` and
``append_below``, each in one compiled pass (BENCHMARKS §132, §138, §142, §148). The last four
were ~20-40 numpy calls each on a few thousand rows, a fifth of ``answer``'s CPU at batch 8.

At a coalesced batch's size (16 users, ~4,100 candidate rows) the features' own arithmetic is a
few gathers per row; what numpy spent was its per-call cost, ~60 calls a batch, each a pass
over the rows or the (query, category) cells. ``candidate_columns`` spreads the batch's users'
share, last-event and affinity rows into dense planes and counts the session's categories (in C
scratch memory, freed before it returns), then reads each row's query, item and category once
and writes every column up to the profile properties (which ``profile_values`` still writes)
into the [features, candidates] matrix. Same values bit for bit: the same gathers, duplicates
added in storage order in the matrix's precision, the days and the session share in float64
and cast once, NaN as numpy writes it. ``strongest`` is ``pipeline.anchors._strongest``: per
final row, the recent items' weights searched by halving in the item-to-item matrix's row.

The library is built by ``trees.build`` (its cache, lock and pruning) on a background thread
the first time it is asked for (``start``: when a pipeline is loaded), never on a request:
until it is loaded, or where it cannot be (no compiler), or for inputs it does not read (other
dtypes, an index out of range), numpy's path answers (the tests' oracle too).
"""

from __future__ import annotations

import ctypes
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from recsmith.retrieval.candidates import Candidates
from recsmith.retrieval.queries import Queries
from recsmith.sparse_rows import DENSE_CELLS
from recsmith.trees.build import KernelUnavailable, load_library

if TYPE_CHECKING:
    from recsmith.ranking.features import FeatureState
    from recsmith.retrieval.sources import Proposals

log = logging.getLogger(__name__)

#: the state's per-item arrays ``candidate_columns`` reads, in its order, and their dtypes
_ITEM_ARRAYS = (
    ("item_popularity", np.float32),
    ("item_trend", np.float32),
    ("item_age_days", np.float32),
    ("item_price", np.float32),
    ("item_category", np.int32),
)

SOURCE = r"""
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* Element k of an index array of 4 or 8 bytes an element, and of a float32 or float64 one:
   scipy stores a matrix's indices in either width (a release's mapped matrices in int64, a
   request's built ones in int32 or int64), and a branch taken the same way every time costs
   less than a copy of the widest of them. */
static inline int64_t index_at(const void *array, int64_t width, int64_t k) {
    return width == 8 ? ((const int64_t *)array)[k] : ((const int32_t *)array)[k];
}
static inline double value_at(const void *array, int64_t width, int64_t k) {
    return width == 8 ? ((const double *)array)[k] : ((const float *)array)[k];
}

/* Rows users[i] of a CSR matrix of n_rows rows and n_cols columns (none for users[i] < 0)
   added into grid, row i at i * n_cols (zeros where nothing is stored), in storage order and
   in the matrix's own precision: a float32 grid for float32 values, else a double one (numpy's
   add.at into a grid of the matrix's dtype). -1 where a row or a column is out of range. */
static int32_t spread(
    int64_t n_users, const int32_t *users, const void *indptr, const void *indices,
    const void *data, int64_t ptr_width, int64_t index_width, int64_t data_width,
    int64_t n_rows, int64_t n_cols, void *grid)
{
    for (int64_t i = 0; i < n_users; i++) {
        const int64_t u = users[i];
        if (u < 0) continue;
        if (u >= n_rows) return -1;
        const int64_t end = index_at(indptr, ptr_width, u + 1);
        for (int64_t k = index_at(indptr, ptr_width, u); k < end; k++) {
            const int64_t col = index_at(indices, index_width, k);
            if (col < 0 || col >= n_cols) return -1;
            if (data_width == 8) ((double *)grid)[i * n_cols + col] += ((const double *)data)[k];
            else ((float *)grid)[i * n_cols + col] += ((const float *)data)[k];
        }
    }
    return 0;
}

/* Every column of candidate_features up to the profile properties, into out [width, n] (row
   f: feature f of every candidate row), for candidate rows of query query[i] and item items[i]:
   the sources' score and rank interleaved (rank NaN where 0 or below), the count of sources
   with a rank, the item's popularity, trend, age and price, the query's user's events (0 for
   an unknown user), the user's share of the item's category, the days since their last event
   in it (NaN: none, or no user or category), the share of the query's recent items in it, the
   query's context, then per item property its value, or where categorical[p] the user's
   affinity for the item's code (NaN: an unknown user, or an item without one).

   As numpy computes them (features._query_category_columns, property_features): the users'
   rows of share (float32 values), last (float64: the last event's µs + 1) and affinity
   (float32) spread into dense planes of one cell per (query, category or code) and one last
   cell (no category: 0, NaN, 0; no code: NaN), duplicates added in storage order; the days
   and the session share in float64, cast once. -1 where an index is out of range or memory
   runs out, some columns maybe written: numpy's path then writes them all (and raises where
   it does). */
int32_t candidate_columns(
    int64_t n, int64_t n_queries, int64_t n_sources, int64_t n_context, int64_t n_properties,
    const int32_t *query, const int32_t *items, const float *scores, const int16_t *ranks,
    const int32_t *users, const float *context, int64_t n_items, const float *popularity,
    const float *trend, const float *age, const float *price, const int32_t *category,
    int64_t n_users, const float *user_events, int64_t n_cats, const void *share_ptr,
    const void *share_idx, const float *share_data, int64_t share_pw, int64_t share_iw,
    const void *last_ptr, const void *last_idx, const double *last_data, int64_t last_pw,
    int64_t last_iw, double reference_ts, const void *recent_ptr, const void *recent_idx,
    int64_t recent_pw, int64_t recent_iw, const float *item_values, const uint8_t *categorical,
    int64_t n_codes, int64_t affinity_rows, const void *affinity_ptr, const void *affinity_idx,
    const float *affinity_data, int64_t affinity_pw, int64_t affinity_iw, float *out)
{
    const union { uint32_t bits; float value; } nan = {0x7fc00000u};  /* numpy's NaN */
    const int64_t n_cells = n_queries * n_cats, n_grid = n_queries * n_codes + 1;
    int32_t done = -1;
    float *share = calloc(n_cells + 1, sizeof(float)), *days = malloc((n_cells + 1) * 4);
    double *last = calloc(n_cells + 1, sizeof(double));
    int64_t *counts = calloc(n_cells + 1, sizeof(int64_t));
    float *totals = malloc(n_queries * 4 + 4), *events = malloc(n_queries * 4 + 4);
    float *affinity = calloc(n_grid, sizeof(float));
    if (!share || !days || !last || !counts || !totals || !events || !affinity) goto end;
    for (int64_t i = 0; i < n; i++) {
        if (query[i] < 0 || query[i] >= n_queries || items[i] < 0 || items[i] >= n_items) goto end;
        if (category[items[i]] >= n_cats) goto end;
    }
    if (spread(n_queries, users, share_ptr, share_idx, share_data, share_pw, share_iw, 4,
               n_users, n_cats, share) < 0
        || spread(n_queries, users, last_ptr, last_idx, last_data, last_pw, last_iw, 8, n_users,
                  n_cats, last) < 0)
        goto end;
    /* spread refused users past n_users (the shorter of user_events and share's rows) */
    for (int64_t q = 0; q < n_queries; q++)
        events[q] = users[q] >= 0 ? user_events[users[q]] : 0.0f;
    int64_t any_categorical = 0;  /* numpy spreads the affinity rows only then */
    for (int64_t p = 0; p < n_properties; p++) any_categorical |= categorical[p];
    if (any_categorical
        && spread(n_queries, users, affinity_ptr, affinity_idx, affinity_data, affinity_pw,
                  affinity_iw, 4, affinity_rows, n_codes, affinity) < 0)
        goto end;
    for (int64_t c = 0; c <= n_cells; c++)
        days[c] = c < n_cells && last[c] > 0
            ? (float)((reference_ts - (last[c] - 1.0)) / 86400000000.0) : nan.value;
    for (int64_t q = 0; q < n_queries; q++) {
        const int64_t first = index_at(recent_ptr, recent_pw, q);
        const int64_t end = index_at(recent_ptr, recent_pw, q + 1);
        for (int64_t k = first; k < end; k++) {
            const int64_t item = index_at(recent_idx, recent_iw, k);
            if (item < 0 || item >= n_items || category[item] >= n_cats) goto end;
            if (category[item] >= 0) counts[q * n_cats + category[item]] += 1;
        }
        totals[q] = (float)(end - first > 1 ? end - first : 1);
        if (users[q] < 0)
            for (int64_t c = 0; c < n_codes; c++) affinity[q * n_codes + c] = nan.value;
    }
    affinity[n_grid - 1] = nan.value;
    for (int64_t i = 0; i < n; i++) {
        const int64_t q = query[i], item = items[i], c = category[item];
        const int64_t cell = c >= 0 ? q * n_cats + c : n_cells;
        float *o = out + i;
        int64_t proposed = 0;
        for (int64_t s = 0; s < n_sources; s++) {
            const int16_t rank = ranks[i * n_sources + s];
            o[2 * s * n] = scores[i * n_sources + s];
            o[(2 * s + 1) * n] = rank > 0 ? (float)rank : nan.value;
            proposed += rank > 0;
        }
        o += 2 * n_sources * n;
        o[0] = (float)proposed;
        o[n] = popularity[item];
        o[2 * n] = trend[item];
        o[3 * n] = age[item];
        o[4 * n] = price[item];
        o[5 * n] = events[q];
        o[6 * n] = share[cell];
        o[7 * n] = days[cell];
        o[8 * n] = (float)((double)counts[cell] / (double)totals[q]);
        for (int64_t k = 0; k < n_context; k++) o[(9 + k) * n] = context[q * n_context + k];
        o += (9 + n_context) * n;
        for (int64_t p = 0; p < n_properties; p++) {
            const float value = item_values[item * n_properties + p];
            if (!categorical[p]) {
                o[p * n] = value;
                continue;
            }
            /* numpy's (query x codes + value) in float64, cut to int64 (a code past the
               query's row reads the next one's, as numpy's gather does) */
            const double at = isfinite(value) ? (double)(q * n_codes) + (double)value
                                              : (double)(n_grid - 1);
            if (!(at >= 0.0 && at < (double)n_grid)) goto end;
            o[p * n] = affinity[(int64_t)at];
        }
    }
    done = 0;
end:
    free(share); free(days); free(last); free(counts); free(totals); free(events); free(affinity);
    return done;
}

/* Per row i: of the recent items r of row query[i] of the recent CSR matrix (storage order),
   those below m_rows, the one with the largest weight matrix[r, items[i]] (0 where the matrix
   stores nothing or items[i] is outside it), the last such on ties, written to anchor[i] where
   that weight is > 0 and none of the row's weights is NaN, else -1. matrix: a canonical CSR
   (each row's columns sorted, none twice), searched by halving within the row. -1 where a
   query is past the recent matrix's rows (nothing written) or a recent item is negative (some
   rows maybe written): numpy's path then answers every row. */
int32_t strongest(
    int64_t n, const int32_t *query, const int32_t *items, int64_t recent_rows,
    const void *recent_indptr, const void *recent_indices, int64_t recent_ptr_width,
    int64_t recent_index_width, const void *indptr, const void *indices, const void *data,
    int64_t ptr_width, int64_t index_width, int64_t data_width, int64_t m_rows, int64_t m_cols,
    int64_t *anchor)
{
    for (int64_t i = 0; i < n; i++)
        if (query[i] >= recent_rows) return -1;
    for (int64_t i = 0; i < n; i++) {
        const int64_t item = items[i];
        if (query[i] < 0) {  /* an unknown query's row: no recent items */
            anchor[i] = -1;
            continue;
        }
        const int64_t first = index_at(recent_indptr, recent_ptr_width, query[i]);
        const int64_t end = index_at(recent_indptr, recent_ptr_width, query[i] + 1);
        int64_t best_at = -1, nan = 0;
        double best = 0.0;
        for (int64_t k = first; k < end && !nan; k++) {
            const int64_t r = index_at(recent_indices, recent_index_width, k);
            if (r < 0) return -1;  /* before the row offsets: numpy reads the last row */
            if (r >= m_rows) continue;  /* joined after training: in no model's matrix */
            double weight = 0.0;
            if (item >= 0 && item < m_cols) {
                const int64_t stop = index_at(indptr, ptr_width, r + 1);
                int64_t lo = index_at(indptr, ptr_width, r), hi = stop;
                while (lo < hi) {  /* the first position whose column is not below item */
                    const int64_t mid = lo + (hi - lo) / 2;
                    if (index_at(indices, index_width, mid) < item) lo = mid + 1; else hi = mid;
                }
                if (lo < stop && index_at(indices, index_width, lo) == item)
                    weight = value_at(data, data_width, lo);
            }
            if (weight != weight) nan = 1;
            else if (best_at < 0 || weight >= best) { best = weight; best_at = r; }
        }
        anchor[i] = !nan && best_at >= 0 && best > 0.0 ? best_at : -1;
    }
    return 0;
}
/* keys[0 .. n - 1], each 0 .. max_key, sorted ascending: by insertion for a few, else by 11-bit
   digits, least significant first (two passes for a batch of 16 on a 100,000-item catalogue),
   through spare (room for n). Returns whichever of the two holds them sorted. */
static int64_t *sorted_keys(int64_t *keys, int64_t *spare, int64_t n, int64_t max_key) {
    if (n <= 64) {
        for (int64_t i = 1; i < n; i++) {
            const int64_t v = keys[i];
            int64_t at = i;
            for (; at > 0 && keys[at - 1] > v; at--) keys[at] = keys[at - 1];
            keys[at] = v;
        }
        return keys;
    }
    int64_t count[2048];
    for (int64_t shift = 0; shift == 0 || (shift < 63 && max_key >> shift > 0); shift += 11) {
        for (int64_t d = 0; d < 2048; d++) count[d] = 0;
        for (int64_t i = 0; i < n; i++) count[(keys[i] >> shift) & 2047]++;
        for (int64_t d = 0, at = 0; d < 2048; d++) {
            const int64_t here = count[d];
            count[d] = at;
            at += here;
        }
        for (int64_t i = 0; i < n; i++) spare[count[(keys[i] >> shift) & 2047]++] = keys[i];
        int64_t *swap = keys;
        keys = spare;
        spare = swap;
    }
    return keys;
}

/* sparse_rows.csr_of_rows in one pass: output row i holds the columns of row index[i] of a CSR
   matrix of m_rows rows (none for index[i] < 0) and of every pair (rows[k], cols[k]) with
   rows[k] = i, sorted and each once (csr_from_pairs' canonical rows). The pairs are sorted as
   keys row * n_cols + column (sorted_keys) and merged row by row with the matrix's rows, read
   as they stand where `canonical` (each row's columns sorted, none twice), else sorted with the
   pairs. out_indptr [n + 1]; out_indices has room for `room` columns. Returns how many columns
   the rows hold (all written only where that fits in room: else the caller asks again with
   that room), or -1 where numpy's path must answer: an index past the matrix's rows, a pair's
   row outside 0 .. n - 1, a column outside 0 .. n_cols - 1 (numpy's keys would carry it into
   another row), memory that runs out. */
int64_t rows_with_pairs(
    int64_t n, const void *index, int64_t index_width, int64_t m_rows, const void *indptr,
    const void *indices, int64_t ptr_width, int64_t column_width, int64_t canonical,
    int64_t n_pairs, const void *rows, int64_t rows_width, const void *cols,
    int64_t cols_width, int64_t n_cols, int64_t room, int64_t *out_indptr, int64_t *out_indices)
{
    int64_t total = -1, n_keys = n_pairs, held = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t u = index_at(index, index_width, i);
        if (u >= m_rows) return -1;
        if (u >= 0 && !canonical)
            n_keys += index_at(indptr, ptr_width, u + 1) - index_at(indptr, ptr_width, u);
    }
    int64_t *keys = malloc((n_keys + 1) * sizeof(int64_t));
    int64_t *spare = malloc((n_keys + 1) * sizeof(int64_t));
    if (!keys || !spare) goto end;
    for (int64_t k = 0; k < n_pairs; k++) {
        const int64_t r = index_at(rows, rows_width, k), c = index_at(cols, cols_width, k);
        if (r < 0 || r >= n || c < 0 || c >= n_cols) goto end;
        keys[k] = r * n_cols + c;
    }
    for (int64_t i = 0, at = n_pairs; i < n && !canonical; i++) {
        const int64_t u = index_at(index, index_width, i);
        if (u < 0) continue;
        const int64_t stop = index_at(indptr, ptr_width, u + 1);
        for (int64_t e = index_at(indptr, ptr_width, u); e < stop; e++) {
            const int64_t c = index_at(indices, column_width, e);
            if (c < 0 || c >= n_cols) goto end;
            keys[at++] = i * n_cols + c;
        }
    }
    const int64_t *sorted = sorted_keys(keys, spare, n_keys, n * n_cols);
    out_indptr[0] = 0;
    for (int64_t i = 0, p = 0; i < n; i++) {
        const int64_t u = index_at(index, index_width, i), base = i * n_cols;
        int64_t e = 0, stop = 0, last = -1;
        if (u >= 0 && canonical) {
            e = index_at(indptr, ptr_width, u);
            stop = index_at(indptr, ptr_width, u + 1);
        }
        for (;;) {  /* the smaller of the row's next stored column and next key's, once */
            const int64_t from_key =
                p < n_keys && sorted[p] < base + n_cols ? sorted[p] - base : -1;
            const int64_t stored = e < stop ? index_at(indices, column_width, e) : -1;
            if (from_key < 0 && e >= stop) break;
            int64_t c;
            if (e < stop && (from_key < 0 || stored <= from_key)) {
                if (stored < 0 || stored >= n_cols) goto end;
                c = stored;
                e++;
            } else {
                c = from_key;
                p++;
            }
            if (c == last) continue;
            if (held < room) out_indices[held] = c;
            held++;
            last = c;
        }
        out_indptr[i + 1] = held;
    }
    total = held;
end:
    free(keys);
    free(spare);
    return total;
}
/* id_table.IdTable.find in one pass: per wanted id (width UTF-32 code units, as the ids are
   stored), its hash (the units weighted by `weights` and summed modulo 2 ** 64, the top `bits`
   bits), then the slots from there on (linear probing, 2 ** bits of them) until the slot of an
   index whose id is the wanted one (written to out) or an empty one (-1 written: not an id).
   -1 where a slot holds an index past the ids (numpy's path then answers and raises). */
int32_t find_ids(
    int64_t n, const uint32_t *wanted, int64_t width, const uint32_t *ids, int64_t n_ids,
    const int32_t *slots, int64_t bits, const uint64_t *weights, int32_t *out)
{
    const int64_t mask = ((int64_t)1 << bits) - 1;
    for (int64_t i = 0; i < n; i++) {
        const uint32_t *id = wanted + i * width;
        uint64_t hash = 0;
        for (int64_t c = 0; c < width; c++) hash += (uint64_t)id[c] * weights[c];
        int64_t at = (int64_t)(hash >> (64 - bits));
        out[i] = -1;
        for (;;) {  /* at most half the slots are held: an empty one ends every search */
            const int32_t held = slots[at];
            if (held < 0) break;
            if (held >= n_ids) return -1;
            const uint32_t *stored = ids + (int64_t)held * width;
            int64_t c = 0;
            while (c < width && stored[c] == id[c]) c++;
            if (c == width) {
                out[i] = held;
                break;
            }
            at = (at + 1) & mask;
        }
    }
    return 0;
}
/* MMR's closed-form walk of a request of a few queries (rerank.few_queries.walked_few): rows
   grouped by query (query q: rows bounds[q] .. bounds[q + 1]) without seeds, checked to be in
   relevance order as mmr._in_order checks them (a NaN fails but a lone row's), each query
   walked within its first `width` cells as the numpy path walks its window (MMR._windowed,
   MMR._walk), the same float64 operations in the same order: a cell keyed
   lam * (rel - last) / (first - last) (lam * 1.0 where they are equal), less spread = 1 - lam
   where `penalised` and an earlier cell of the window holds its code (0 or more); the cells
   ordered by key, best first, ties in column order (a stable insertion sort: ~36 cells); the
   first k that the cap does not refuse (a code of 0 or more held by cap or more earlier cells;
   cap INT64_MAX: none) written to picked as row numbers, by query then pick order. Codes are
   group's, or where `penalised` category[items] (which must be group's too unless there is no
   cap: the groups then play no part). Returns how many were written, or -1 where numpy's path
   must answer: a capped query's window whose groups are not its items' categories (or an item
   outside category), rows out of order, a non-finite first or last
   relevance or span (first - last: finite ends near +-DBL_MAX overflow it), a window that does
   not settle (fewer than k picks, or the k-th keyed below lam * the scaled relevance of the
   first cell past it), memory that runs out. */
int64_t mmr_walk(
    int64_t n_queries, const int64_t *bounds, double lam, int64_t penalised, int64_t width,
    const void *items, int64_t items_width, const void *relevance, int64_t relevance_width,
    const void *group, int64_t group_width, const void *category, int64_t category_width,
    int64_t n_category, int64_t cap, int64_t k, int64_t *picked)
{
    const double spread = 1.0 - lam;
    int64_t widest = 0, n_picked = -1, written = 0;
    for (int64_t q = 0; q < n_queries; q++) {
        const int64_t length = bounds[q + 1] - bounds[q];
        if (length > widest) widest = length;
    }
    if (widest > width) widest = width;
    double *keys = malloc((widest + 1) * sizeof(double));
    int64_t *codes = malloc((widest + 1) * sizeof(int64_t));
    int64_t *order = malloc((widest + 1) * sizeof(int64_t));
    unsigned char *refused = malloc(widest + 1);
    if (!keys || !codes || !order || !refused) goto end;
    for (int64_t q = 0; q < n_queries; q++) {
        const int64_t start = bounds[q], end = bounds[q + 1];
        if (end <= start) continue;
        const int64_t shown = end - start < width ? end - start : width;
        for (int64_t c = 0; c < shown; c++) {
            codes[c] = index_at(group, group_width, start + c);
            if (penalised) {
                const int64_t item = index_at(items, items_width, start + c);
                if (item < 0 || item >= n_category) goto end;
                const int64_t code = index_at(category, category_width, item);
                if (code != codes[c] && cap != INT64_MAX) goto end;
                codes[c] = code;
            }
        }
        double hi = value_at(relevance, relevance_width, start), next = hi;
        for (int64_t i = start + 1; i < end; i++) {  /* in order, each query's maximum first */
            const double rel = value_at(relevance, relevance_width, i);
            if (!(rel <= next)) goto end;
            next = rel;
        }
        const double lo = next;  /* its minimum last */
        const double span = hi - lo;  /* finite ends may span past double's range */
        if (!isfinite(hi) || !isfinite(lo) || !isfinite(span)) goto end;
        int64_t n_order = 0;
        for (int64_t c = 0; c < shown; c++) {
            const double rel = value_at(relevance, relevance_width, start + c);
            int64_t before = 0;
            for (int64_t b = 0; b < c; b++) before += codes[b] == codes[c];
            double key = lam * (span > 0 ? (rel - lo) / span : 1.0);
            if (penalised && codes[c] >= 0 && before > 0) key = key - spread;
            keys[c] = key;
            refused[c] = codes[c] >= 0 && before >= cap;
            int64_t at = n_order++;
            for (; at > 0 && keys[order[at - 1]] < key; at--) order[at] = order[at - 1];
            order[at] = c;
        }
        int64_t taken = 0, last = -1;
        for (int64_t i = 0; i < n_order && taken < k; i++) {
            if (refused[order[i]]) continue;
            last = order[i];
            picked[written + taken++] = start + last;
        }
        if (end - start > shown) {  /* cells past the window: settled only by k picks keyed high */
            const double rel = value_at(relevance, relevance_width, start + shown);
            const double beyond = lam * (span > 0 ? (rel - lo) / span : 1.0);
            if (taken < k || keys[last] < beyond) goto end;
        }
        written += taken;
    }
    n_picked = written;
end:
    free(keys); free(codes); free(order); free(refused);
    return n_picked;
}

/* retrieval.merge.append_below's rows in one pass: the candidates (n rows of width source
   columns) and the extra proposals (m rows) a query lacks, grouped by query as a stable sort
   by query orders them (each query's candidates in their order, then its new extra rows in
   theirs), into out_* (room for n + m rows, width + 1 columns: the candidates' cells, NaN / 0
   in the new column; a new row's NaN / 0 then the extra's score and rank). A new row scores
   (float)((floor - 1.0) - rank * 1e-3), floor the query's lowest candidate score and 0 at
   most, in double as numpy computes it. info[0]: the rows written, info[1]: 1 where a new
   (query, item) pair came twice, info[2]: 1 where the rows stand in their order with nothing
   added. -1 (numpy's path answers) where a query or item is out of range, an item id is
   BELOW_MARKED_ITEMS or more (the mark below holds a byte per id up to the largest: ids near
   int32 max would calloc 2 GiB a call), memory runs out, or a query's rows would not come
   best first (numpy then sorts them all; a NaN score after a query's first row, or above an
   added row, fails that check, and a lone NaN row stands as numpy leaves it). */
#define BELOW_MARKED_ITEMS (1 << 24)
int32_t below_rows(
    int64_t n, int64_t n_queries, int64_t width, const int32_t *query, const int32_t *items,
    const float *score, const float *src_scores, const int16_t *src_ranks, int64_t m,
    const int32_t *x_query, const int32_t *x_items, const float *x_scores,
    const int16_t *x_ranks, int32_t *out_query, int32_t *out_items, float *out_score,
    float *out_scores, int16_t *out_ranks, int64_t *info)
{
    const union { uint32_t bits; float value; } nan = {0x7fc00000u};  /* numpy's NaN */
    int32_t status = -1;
    int64_t top = 0;
    for (int64_t i = 0; i < n; i++) {
        if (query[i] < 0 || query[i] >= n_queries || items[i] < 0) return -1;
        if (items[i] > top) top = items[i];
    }
    for (int64_t j = 0; j < m; j++) {
        if (x_query[j] < 0 || x_query[j] >= n_queries || x_items[j] < 0) return -1;
        if (x_items[j] > top) top = x_items[j];
    }
    if (top >= BELOW_MARKED_ITEMS) return -1;
    /* rows bucketed by query, stably: starts[q] .. starts[q + 1] in order (candidates), and
       x_starts for the extra rows */
    int64_t *starts = calloc(n_queries + 1, sizeof(int64_t));
    int64_t *x_starts = calloc(n_queries + 1, sizeof(int64_t));
    int64_t *order = malloc((n + 1) * sizeof(int64_t));
    int64_t *x_order = malloc((m + 1) * sizeof(int64_t));
    uint8_t *mark = calloc(top + 1, 1);  /* per item: 1 a candidate of the query, 2 added */
    if (!starts || !x_starts || !order || !x_order || !mark) goto end;
    for (int64_t i = 0; i < n; i++) starts[query[i] + 1]++;
    for (int64_t j = 0; j < m; j++) x_starts[x_query[j] + 1]++;
    for (int64_t q = 0; q < n_queries; q++) {
        starts[q + 1] += starts[q];
        x_starts[q + 1] += x_starts[q];
    }
    for (int64_t i = 0; i < n; i++) order[starts[query[i]]++] = i;
    for (int64_t j = 0; j < m; j++) x_order[x_starts[x_query[j]]++] = j;
    for (int64_t q = n_queries; q > 0; q--) {  /* the counters moved each start to the next */
        starts[q] = starts[q - 1];
        x_starts[q] = x_starts[q - 1];
    }
    starts[0] = x_starts[0] = 0;
    const int64_t wide = width + 1;
    int64_t written = 0, repeated = 0, moved = 0;
    for (int64_t q = 0; q < n_queries; q++) {
        double floor = 0.0;
        const int64_t first = written;
        for (int64_t c = starts[q]; c < starts[q + 1]; c++) {
            const int64_t i = order[c];
            if (score[i] < floor) floor = score[i];
            if (written > first && !(score[i] <= out_score[written - 1])) goto end;
            moved |= i != written;
            mark[items[i]] = 1;
            out_query[written] = query[i];
            out_items[written] = items[i];
            out_score[written] = score[i];
            for (int64_t s = 0; s < width; s++) {
                out_scores[written * wide + s] = src_scores[i * width + s];
                out_ranks[written * wide + s] = src_ranks[i * width + s];
            }
            out_scores[written * wide + width] = nan.value;
            out_ranks[written * wide + width] = 0;
            written++;
        }
        for (int64_t c = x_starts[q]; c < x_starts[q + 1]; c++) {
            const int64_t j = x_order[c];
            if (mark[x_items[j]] == 1) continue;
            repeated |= mark[x_items[j]] == 2;
            mark[x_items[j]] = 2;
            const float below = (float)((floor - 1.0) - (double)x_ranks[j] * 1e-3);
            if (written > first && !(below <= out_score[written - 1])) goto end;
            moved = 1;
            out_query[written] = x_query[j];
            out_items[written] = x_items[j];
            out_score[written] = below;
            for (int64_t s = 0; s < width; s++) {
                out_scores[written * wide + s] = nan.value;
                out_ranks[written * wide + s] = 0;
            }
            out_scores[written * wide + width] = x_scores[j];
            out_ranks[written * wide + width] = x_ranks[j];
            written++;
        }
        for (int64_t r = first; r < written; r++) mark[out_items[r]] = 0;
    }
    info[0] = written;
    info[1] = repeated;
    info[2] = !moved;
    status = 0;
end:
    free(starts); free(x_starts); free(order); free(x_order); free(mark);
    return status;
}

/* retrieval.merge.merge's rows in one pass: m proposals (sources' rows one after another,
   sizes[s] rows of source s) into one row per distinct (query, item), in the order of the key
   query * n_items + item (a stable radix sort of the keys, 11 bits a pass), each row's
   sources' scores and ranks in its cells (out_scores NaN, out_ranks 0 elsewhere; a source
   proposing a pair twice: its later row's) and its fused score, weights[s] / (60 + rank)
   summed from 0.0 in proposal order in double and cast once (numpy's bincount; rrf_k is
   merge.RRF_K). Returns the
   rows written; -1 (numpy's path answers) where the sizes do not sum to m, a query or item
   is out of range or memory runs out. */
int64_t merged_rows(
    int64_t m, int64_t n_sources, const int64_t *sizes, const double *weights, double rrf_k,
    const int32_t *query, const int32_t *items, const float *scores, const int16_t *ranks,
    int64_t n_queries, int64_t n_items, int32_t *out_query, int32_t *out_items,
    float *out_fused, float *out_scores, int16_t *out_ranks)
{
    const union { uint32_t bits; float value; } nan = {0x7fc00000u};  /* numpy's NaN */
    int64_t rows = -1;
    uint64_t top = 0;
    uint64_t *keys = malloc((m + 1) * sizeof(uint64_t));
    int64_t *order = malloc((m + 1) * sizeof(int64_t));
    int64_t *spare = malloc((m + 1) * sizeof(int64_t));
    int64_t *source = malloc((m + 1) * sizeof(int64_t));
    int64_t *counts = malloc(2049 * sizeof(int64_t));
    double *fused = malloc((m + 1) * sizeof(double));
    if (!keys || !order || !spare || !source || !counts || !fused) goto end;
    int64_t covered = 0;  /* sizes must cover the m rows: past them source[] is unwritten */
    for (int64_t s = 0; s < n_sources; s++) {
        if (sizes[s] < 0 || covered + sizes[s] > m) goto end;
        for (int64_t r = 0; r < sizes[s]; r++) source[covered++] = s;
    }
    if (covered != m) goto end;
    for (int64_t i = 0; i < m; i++) {
        if (query[i] < 0 || query[i] >= n_queries) goto end;
        if (items[i] < 0 || items[i] >= n_items) goto end;
        keys[i] = (uint64_t)query[i] * (uint64_t)n_items + (uint64_t)items[i];
        if (keys[i] > top) top = keys[i];
        order[i] = i;
    }
    for (int shift = 0; shift < 64 && (top >> shift) > 0; shift += 11) {
        for (int64_t d = 0; d < 2049; d++) counts[d] = 0;
        for (int64_t i = 0; i < m; i++) counts[((keys[order[i]] >> shift) & 2047) + 1]++;
        for (int64_t d = 0; d < 2048; d++) counts[d + 1] += counts[d];
        for (int64_t i = 0; i < m; i++) {
            spare[counts[(keys[order[i]] >> shift) & 2047]++] = order[i];
        }
        int64_t *swap = order;
        order = spare;
        spare = swap;
    }
    int64_t row = -1;
    for (int64_t t = 0; t < m; t++) {
        const int64_t i = order[t];
        if (row < 0 || keys[i] != keys[order[t - 1]]) {
            row++;
            out_query[row] = query[i];
            out_items[row] = items[i];
            fused[row] = 0.0;
            for (int64_t s = 0; s < n_sources; s++) {
                out_scores[row * n_sources + s] = nan.value;
                out_ranks[row * n_sources + s] = 0;
            }
        }
        const int64_t s = source[i];
        fused[row] += weights[s] / (rrf_k + (double)ranks[i]);
        out_scores[row * n_sources + s] = scores[i];
        out_ranks[row * n_sources + s] = ranks[i];
    }
    rows = row + 1;
    for (int64_t r = 0; r < rows; r++) out_fused[r] = (float)fused[r];
end:
    free(keys); free(order); free(spare); free(source); free(counts); free(fused);
    return rows;
}

/* A float's place in models.topk.best_first's order as 32 bits: high to low, -0.0 as 0.0,
   NaN (every payload) after every number. */
static inline uint64_t falling(float value) {
    const float down = -value + 0.0f;
    if (isnan(down)) return 0xFFFFFFFFu;
    union { float value; uint32_t bits; } cast = {down};
    const uint32_t flip = (uint32_t)((int32_t)cast.bits >> 31) | 0x80000000u;
    return cast.bits ^ flip;
}

/* order sorted stably by the low bits of key (11 bits a pass); spare is as long, counts
   2049 long; *order and *spare swapped each pass. */
static void by_key(int64_t n, const uint64_t *key, int bits, int64_t **order, int64_t **spare,
                   int64_t *counts) {
    for (int shift = 0; shift < bits; shift += 11) {
        for (int64_t d = 0; d < 2049; d++) counts[d] = 0;
        for (int64_t i = 0; i < n; i++) counts[((key[(*order)[i]] >> shift) & 2047) + 1]++;
        for (int64_t d = 0; d < 2048; d++) counts[d + 1] += counts[d];
        for (int64_t i = 0; i < n; i++) {
            (*spare)[counts[(key[(*order)[i]] >> shift) & 2047]++] = (*order)[i];
        }
        int64_t *swap = *order;
        *order = *spare;
        *spare = swap;
    }
}

/* retrieval.candidates.Candidates.rescored's rows in one pass: the rows ordered by query, then
   score (the new one) from high to low, then the fused score from high to low, then row
   (best_first's order of best_first's fused order), gathered into out_* with score as their
   score. -1 (numpy's path answers) where a query is negative or memory runs out. */
int32_t rescored_rows(
    int64_t n, int64_t width, const int32_t *query, const int32_t *items, const float *fused,
    const float *score, const float *src_scores, const int16_t *src_ranks, int32_t *out_query,
    int32_t *out_items, float *out_score, float *out_scores, int16_t *out_ranks)
{
    int32_t status = -1;
    int32_t top = 0;
    uint64_t *ties = malloc((n + 1) * sizeof(uint64_t)), *keys = malloc((n + 1) * sizeof(uint64_t));
    int64_t *order = malloc((n + 1) * sizeof(int64_t));
    int64_t *spare = malloc((n + 1) * sizeof(int64_t));
    int64_t *counts = malloc(2049 * sizeof(int64_t));
    if (!ties || !keys || !order || !spare || !counts) goto end;
    for (int64_t i = 0; i < n; i++) {
        if (query[i] < 0) goto end;
        if (query[i] > top) top = query[i];
        ties[i] = falling(fused[i]);
        keys[i] = (uint64_t)query[i] << 32 | falling(score[i]);
        order[i] = i;
    }
    int bits = 32;
    while (top >> (bits - 32)) bits++;
    by_key(n, ties, 32, &order, &spare, counts);
    by_key(n, keys, bits, &order, &spare, counts);
    for (int64_t t = 0; t < n; t++) {
        const int64_t i = order[t];
        out_query[t] = query[i];
        out_items[t] = items[i];
        out_score[t] = score[i];
        for (int64_t s = 0; s < width; s++) {
            out_scores[t * width + s] = src_scores[i * width + s];
            out_ranks[t * width + s] = src_ranks[i * width + s];
        }
    }
    status = 0;
end:
    free(ties); free(keys); free(order); free(spare); free(counts);
    return status;
}

/* pipeline.training.static_proposals in one pass: per static source s (its head, widths[s]
   items of heads from its start, their scores alongside) and per query row of the exclusions
   (a CSR matrix of n_rows rows and n_cols columns), the head's first quotas[s] items the row
   does not exclude, with their rank among the kept ones (1, 2, ...), grouped by source, then
   by query, then rank, as the sources list them; counts[s]: source s's rows. Returns the rows
   written; -1 (numpy's path answers) where a head's item or an exclusion is out of range, the
   room is short, or memory runs out. */
int64_t static_rows(
    int64_t n_rows, const void *indptr, const void *indices, int64_t ptr_width,
    int64_t index_width, int64_t n_cols, int64_t n_sources, const int64_t *widths,
    const int64_t *quotas, const int64_t *heads, const float *head_scores, int64_t room,
    int32_t *out_query, int32_t *out_items, float *out_scores, int16_t *out_ranks,
    int64_t *counts)
{
    int64_t written = -1, total = 0;
    for (int64_t s = 0; s < n_sources; s++) total += widths[s];
    for (int64_t c = 0; c < total; c++) {
        if (heads[c] < 0 || heads[c] >= n_cols) return -1;
    }
    const int64_t stored = index_at(indptr, ptr_width, n_rows);
    for (int64_t e = index_at(indptr, ptr_width, 0); e < stored; e++) {
        const int64_t col = index_at(indices, index_width, e);
        if (col < 0 || col >= n_cols) return -1;
    }
    uint8_t *excluded = calloc(n_cols + 1, 1);
    if (!excluded) return -1;
    int64_t at = 0;
    for (int64_t s = 0, start = 0; s < n_sources; start += widths[s], s++) {
        const int64_t before = at;
        for (int64_t q = 0; q < n_rows; q++) {
            const int64_t first = index_at(indptr, ptr_width, q);
            const int64_t end = index_at(indptr, ptr_width, q + 1);
            for (int64_t e = first; e < end; e++) excluded[index_at(indices, index_width, e)] = 1;
            int64_t rank = 0;
            for (int64_t c = start; c < start + widths[s] && rank < quotas[s]; c++) {
                if (excluded[heads[c]]) continue;
                if (at >= room) goto end;
                out_query[at] = (int32_t)q;
                out_items[at] = (int32_t)heads[c];
                out_scores[at] = head_scores[c];
                out_ranks[at] = (int16_t)++rank;
                at++;
            }
            for (int64_t e = first; e < end; e++) excluded[index_at(indices, index_width, e)] = 0;
        }
        counts[s] = at - before;
    }
    written = at;
end:
    free(excluded);
    return written;
}
"""

_built = threading.Event()
_started = threading.Lock()
_library: ctypes.CDLL | None = None
_unavailable: str | None = None


def start() -> None:
    """Build or load the library on a background thread, once a process (later calls return
    at once): a pipeline's load calls it, as the ranker starts its own build."""
    if _started.acquire(blocking=False):
        threading.Thread(target=_load, name="feature-kernel", daemon=True).start()


def _load() -> None:
    """The library built or found in the cache, its entries' argument types declared (the
    order of the C signatures above); or why not, logged once."""
    global _library, _unavailable
    try:
        # plain -O2, no -march=native: gathers, copies and searches, nothing vectors speed
        library = load_library(SOURCE, native=False)
        i64, ptr = ctypes.c_int64, ctypes.c_void_p
        library.candidate_columns.argtypes = [
            *[i64] * 5,
            *[ptr] * 6,
            i64,
            *[ptr] * 5,
            i64,
            ptr,
            i64,
            *[ptr] * 3,
            *[i64] * 2,
            *[ptr] * 3,
            *[i64] * 2,
            ctypes.c_double,
            *[ptr] * 2,
            *[i64] * 2,
            *[ptr] * 2,
            *[i64] * 2,
            *[ptr] * 3,
            *[i64] * 2,
            ptr,
        ]
        library.candidate_columns.restype = ctypes.c_int32
        library.strongest.argtypes = [
            i64,
            *[ptr] * 2,
            i64,
            *[ptr] * 2,
            *[i64] * 2,
            *[ptr] * 3,
            *[i64] * 5,
            ptr,
        ]
        library.strongest.restype = ctypes.c_int32
        library.mmr_walk.argtypes = [
            i64,
            ptr,
            ctypes.c_double,
            *[i64] * 2,
            *[ptr, i64] * 4,
            *[i64] * 3,
            ptr,
        ]
        library.mmr_walk.restype = i64
        library.rows_with_pairs.argtypes = [
            i64,
            ptr,
            *[i64] * 2,
            *[ptr] * 2,
            *[i64] * 4,
            ptr,
            i64,
            ptr,
            *[i64] * 3,
            *[ptr] * 2,
        ]
        library.rows_with_pairs.restype = i64
        library.find_ids.argtypes = [i64, ptr, i64, ptr, i64, ptr, i64, ptr, ptr]
        library.find_ids.restype = ctypes.c_int32
        library.below_rows.argtypes = [*[i64] * 3, *[ptr] * 5, i64, *[ptr] * 10]
        library.below_rows.restype = ctypes.c_int32
        library.merged_rows.argtypes = [
            *[i64] * 2,
            *[ptr] * 2,
            ctypes.c_double,
            *[ptr] * 4,
            *[i64] * 2,
            *[ptr] * 5,
        ]
        library.merged_rows.restype = i64
        library.rescored_rows.argtypes = [*[i64] * 2, *[ptr] * 11]
        library.rescored_rows.restype = ctypes.c_int32
        library.static_rows.argtypes = [
            i64,
            *[ptr] * 2,
            *[i64] * 4,
            *[ptr] * 4,
            i64,
            *[ptr] * 5,
        ]
        library.static_rows.restype = i64
        _library = library
    except KernelUnavailable as exc:
        _unavailable = str(exc)
        log.warning("candidate features and anchors: numpy's, not compiled (%s)", exc)
    finally:
        _built.set()


def wait(timeout: float | None = None) -> bool:
    """Start the build if none was, wait up to ``timeout`` s for it; True when the compiled
    passes run now (tests and benchmarks)."""
    start()
    return _built.wait(timeout) and _library is not None


def loaded() -> ctypes.CDLL | None:
    """The compiled library once built (starting the build if none was), else None."""
    if _library is None and not _built.is_set():
        start()
    return _library


def ready() -> ctypes.CDLL | None:
    """The compiled library if it is loaded, else None, starting no build: for helpers that
    every process calls (id lookups, sparse rows), which only a process that loaded a pipeline
    (``start``) should have compile the library."""
    return _library


def unavailable_reason() -> str | None:
    """Why the compiled passes do not run (no compiler, a failed build), else None."""
    return _unavailable


def address(array: np.ndarray) -> int:
    """Where ``array``'s first element is, for a pointer argument (the array must outlive
    the call). A writable, contiguous, non-empty array's is read through the buffer protocol
    (a ctypes view of its first byte: ~0.3 µs), where ``__array_interface__`` builds a dict
    of its shape and type first (~1 µs; a request passes ~70 arrays to the passes, §148);
    the others' (read-only mapped arrays, views with strides, empty ones) as before."""
    flags = array.flags
    if flags.writeable and flags.c_contiguous and array.size:
        try:
            return ctypes.addressof(ctypes.c_char.from_buffer(array))
        except (TypeError, ValueError):  # a dtype numpy exports no buffer of (datetime64)
            pass
    return array.__array_interface__["data"][0]


def _csr(matrix: sparse.csr_array, values: type | None) -> list[int] | None:
    """A CSR matrix's row offsets, columns and values as addresses, then the byte widths of
    the first two; None where the compiled passes do not read it (values not of ``values``'
    dtype, unless None: not read; offsets or columns neither int32 nor int64, a part not
    contiguous)."""
    parts = (matrix.indptr, matrix.indices, matrix.data)
    if values is not None and matrix.data.dtype != values:
        return None
    if not all(a.flags.c_contiguous for a in parts):
        return None
    if any(a.dtype not in (np.int32, np.int64) for a in parts[:2]):
        return None
    return [*(address(a) for a in parts), parts[0].itemsize, parts[1].itemsize]


def find_ids(
    library: ctypes.CDLL,
    wanted: np.ndarray,
    ids: np.ndarray,
    slots: np.ndarray,
    bits: int,
    weights: np.ndarray,
) -> np.ndarray | None:
    """``IdTable.find``'s indices (int32, -1: not an id) in one compiled pass: ~10 numpy calls
    and a round of them per probe, for a request's user and its few hundred items. None where
    the pass does not read the arrays (dtypes that differ, not contiguous) or a slot is out of
    range: numpy's path answers."""
    if wanted.dtype != ids.dtype or not (wanted.flags.c_contiguous and ids.flags.c_contiguous):
        return None
    if slots.dtype != np.int32 or weights.dtype != np.uint64 or wanted.dtype.itemsize % 4:
        return None
    width = wanted.dtype.itemsize // 4
    if len(weights) != width or len(slots) != 1 << bits:
        return None
    out = np.empty(len(wanted), np.int32)
    done = library.find_ids(
        len(wanted),
        address(wanted),
        width,
        address(ids),
        len(ids),
        address(slots),
        bits,
        address(weights),
        address(out),
    )
    return out if done == 0 else None


#: Columns a row ``rows_with_pairs`` makes room for before it knows (a user's training items
#: and the request's own), up to ``_GUESSED_ROWS`` rows: a row that holds more has the pass run
#: again with the room it asked. Past that (an evaluation's whole test set in one call) the room
#: is counted from the offsets first: a guess of 512 a row held 3.9 GB for 1M rows, and the
#: answer's columns, a view, kept it alive (review rv-cpu24a).
_ROOM_PER_ROW = 512
_GUESSED_ROWS = 64


def rows_with_pairs(
    library: ctypes.CDLL,
    matrix: sparse.csr_array,
    index: np.ndarray,
    n_cols: int,
    rows: np.ndarray | None,
    cols: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """``sparse_rows.csr_of_rows``' canonical rows (int64 row offsets and columns) in one
    compiled pass: ~30 numpy calls a request (the gather, the keys, their sort, the counts),
    twice a request (its recent rows and its exclusions). None where the pass does not apply
    (offsets, columns or indices neither int32 nor int64, an index past the matrix's rows, a
    pair or column out of range): numpy's path answers (and raises where it does)."""
    pairs = (rows, cols) if rows is not None and cols is not None else (_NONE, _NONE)
    parts = (index, matrix.indptr, matrix.indices, *pairs)
    if any(a.dtype not in (np.int32, np.int64) or not a.flags.c_contiguous for a in parts):
        return None
    n = len(index)
    indptr = np.empty(n + 1, np.int64)
    room = len(pairs[0]) + _ROOM_PER_ROW * n
    if n > _GUESSED_ROWS:
        known = index[index >= 0]  # -1: a row of nothing
        if len(known) and known.max() >= matrix.shape[0]:
            return None
        offsets = matrix.indptr
        room = len(pairs[0]) + int((offsets[known + 1] - offsets[known]).sum())
    while True:
        out = np.empty(room, np.int64)
        held = library.rows_with_pairs(
            n,
            address(index),
            index.itemsize,
            matrix.shape[0],
            address(matrix.indptr),
            address(matrix.indices),
            matrix.indptr.itemsize,
            matrix.indices.itemsize,
            matrix.has_canonical_format,
            len(pairs[0]),
            address(pairs[0]),
            pairs[0].itemsize,
            address(pairs[1]),
            pairs[1].itemsize,
            n_cols,
            room,
            address(indptr),
            address(out),
        )
        if held < 0:
            return None
        if held <= room:
            return indptr, out[:held]
        room = held


#: No pairs: an empty array to point at
_NONE = np.zeros(0, np.int64)


def strongest(
    library: ctypes.CDLL,
    query: np.ndarray,
    items: np.ndarray,
    recent: sparse.csr_array,
    matrix: sparse.csr_array,
) -> np.ndarray | None:
    """``pipeline.anchors``' anchor per (query, item) row, int64: the recent item of the query
    whose ``matrix`` weight for the item is the largest (> 0, the last on ties, none where a
    weight is NaN), else -1. None where the compiled search does not apply (a matrix not in
    canonical form, whose duplicates scipy adds up; a value or index dtype it does not read; a
    query past ``recent``'s rows; a negative recent item, which scipy takes unchecked and numpy
    reads as the matrix's last row): numpy's ``_strongest`` answers (and raises where it
    does)."""
    values = matrix.data.dtype
    recents = _csr(recent, None)
    weights = _csr(matrix, values) if values in (np.float32, np.float64) else None
    if not matrix.has_canonical_format or recents is None or weights is None:
        return None
    query = np.ascontiguousarray(query, np.int32)
    items = np.ascontiguousarray(items, np.int32)
    out = np.empty(len(query), np.int64)
    done = library.strongest(
        len(query),
        address(query),
        address(items),
        recent.shape[0],
        *recents[:2],
        *recents[3:],
        *weights,
        values.itemsize,
        *matrix.shape,
        address(out),
    )
    return out if done == 0 else None


#: The last ``_KEEP_STATES`` states ``write_columns`` was handed, the latest first, each with its
#: arguments to ``candidate_columns`` (None: a state whose matrices it does not read). A state is
#: frozen and its arrays keep their memory, so these are checked and taken once a state rather
#: than once a batch (~17 addresses, each from a dict numpy builds: ~40 % of the pass's CPU at
#: batch 1); the states are held here with them, so the addresses stay valid until batches of
#: other states push them out. Two: a shadow release (or a second live one) alternates two
#: states batch by batch, which one entry would rebuild every batch (78 µs against 44 µs a batch
#: of one). A tuple replaced whole: a thread reads one consistent snapshot, and two threads that
#: add at once at worst drop an entry, rebuilt at its next batch.
_KEEP_STATES = 2
_last_states: tuple[tuple[object, StateArguments | None], ...] = ()


@dataclass(frozen=True, slots=True)
class StateArguments:
    """``candidate_columns``' arguments from a state, before and after the batch's recent
    items, and the arrays they point into (copies, where a dtype or layout needed one: held as
    long as the arguments are)."""

    before: list[float | int]
    after: list[int]
    arrays: tuple[np.ndarray, ...]


def _state_arguments(state: FeatureState) -> StateArguments | None:
    """``state``'s ``StateArguments``, taken once a state (``_last_states``); None where it
    holds matrices of dtypes the pass does not read."""
    global _last_states
    kept = _last_states
    for held, arguments in kept:
        if held is state:
            return arguments
    arguments = _taken_arguments(state)
    _last_states = ((state, arguments), *kept[: _KEEP_STATES - 1])
    return arguments


def _taken_arguments(state: FeatureState) -> StateArguments | None:
    """``state``'s ``StateArguments`` taken afresh (``_state_arguments`` keeps them)."""
    share, last, affinity = (
        state.user_category_share,
        state.user_category_last,
        state.user_property_share,
    )
    csrs = (_csr(share, np.float32), _csr(last, np.float64), _csr(affinity, np.float32))
    if any(c is None for c in csrs) or last.shape != share.shape:
        return None
    items = [np.ascontiguousarray(getattr(state, name), dtype) for name, dtype in _ITEM_ARRAYS]
    values = np.ascontiguousarray(state.item_properties, np.float32)
    categorical = np.ascontiguousarray(state.item_property_categorical, np.uint8)
    user_events = np.ascontiguousarray(state.user_events, np.float32)
    # a state without properties holds a [0, 0] matrix of them: no row to bound the items
    n_items = min(len(a) for a in (*items, *[values][: len(state.item_property_names) > 0]))
    before = [
        n_items,
        *(address(a) for a in items),
        min(len(user_events), share.shape[0]),
        address(user_events),
        share.shape[1],
        *csrs[0],
        *csrs[1],
        float(state.reference_ts),
    ]
    after = [address(values), address(categorical), *affinity.shape[::-1], *csrs[2]]
    return StateArguments(before, after, (*items, values, categorical, user_events))


def write_columns(
    library: ctypes.CDLL,
    out: np.ndarray,
    state: FeatureState,
    queries: Queries,
    cands: Candidates,
    context: np.ndarray,
) -> bool:
    """Writes the rows of ``out`` [width, n] (C order, float32) that ``candidate_features``
    lays out before the profile properties, as its numpy path does. False where the compiled
    pass does not apply (matrices of other dtypes, an affinity grid past ``DENSE_CELLS``, an
    index out of range, candidate columns that disagree in length): numpy's path then writes
    every column (and raises where it does)."""
    n_queries, n_context = context.shape
    if not _agrees(cands):
        return False
    arguments = _state_arguments(state)
    recent = _csr(queries.recent, None)
    if arguments is None or recent is None or queries.recent.shape[0] != n_queries:
        return False
    if n_queries * int(state.user_property_share.shape[1]) > DENSE_CELLS:
        return False
    n_properties = state.item_properties.shape[1]
    width = 2 * cands.source_scores.shape[1] + 9 + n_context + n_properties
    if not (out.flags.c_contiguous and out.dtype == np.float32 and out.shape[1] == len(cands)):
        raise ValueError("out: expected a C-order float32 [features, candidates] matrix")
    if out.shape[0] < width:
        raise ValueError("out: expected a row for each column written")
    rows = [
        np.ascontiguousarray(cands.query, np.int32),
        np.ascontiguousarray(cands.items, np.int32),
        np.ascontiguousarray(cands.source_scores, np.float32),
        np.ascontiguousarray(cands.source_ranks, np.int16),
        np.ascontiguousarray(queries.users, np.int32),
        np.ascontiguousarray(context, np.float32),
    ]
    done = library.candidate_columns(
        len(cands),
        n_queries,
        cands.source_scores.shape[1],
        n_context,
        n_properties,
        *(address(a) for a in rows),
        *arguments.before,
        *recent[:2],
        *recent[3:],
        *arguments.after,
        address(out),
    )
    return done == 0


def _agrees(cands: Candidates) -> bool:
    """Whether ``cands``' columns the pass reads hold a row per candidate and a column per
    source: the C reads them with the items' length and the scores' width, and ``Candidates``
    checks nothing (numpy's path raises on such a batch; the pass would read past an array)."""
    n, shape = len(cands), (len(cands), len(cands.sources))
    return (
        cands.query.shape == (n,)
        and cands.items.shape == (n,)
        and cands.source_scores.shape == shape
        and cands.source_ranks.shape == shape
    )


#: ``Proposals``' columns as the sources write them: query, items, scores, ranks
_PROPOSAL_DTYPES = (np.int32, np.int32, np.float32, np.int16)


def below_rows(
    library: ctypes.CDLL, cands: Candidates, extra: Proposals, name: str
) -> Candidates | None:
    """``retrieval.merge.append_below``'s candidates in one compiled pass: ~35 numpy calls a
    request (the pairs held, the floors, the widened columns, the concatenations, the stable
    sort by query and its check), ~170 µs of a batch of 8's ~2.3 ms (§148). None where the pass
    does not read the arrays (other dtypes, columns not row-major, lengths that disagree) or
    does not decide (a query's rows not best first, NaN scores among them included; an index
    out of range; an item id of 2**24 or more, whose byte per id mark would cost up to 2 GiB a
    call): numpy's path answers, and sorts where it does. Rows standing as they were (nothing
    added, nothing moved) keep their own arrays, as numpy's path keeps them."""
    parts = (extra.query, extra.items, extra.scores, extra.ranks)
    m = len(extra.items)
    if not _agrees(cands) or any(a.shape != (m,) for a in parts):
        return None
    wanted = (cands.query, cands.items, cands.score, cands.source_scores, cands.source_ranks)
    dtypes = (np.int32, np.int32, np.float32, np.float32, np.int16, *_PROPOSAL_DTYPES)
    if any(
        a.dtype != d or not a.flags.c_contiguous
        for a, d in zip(wanted + parts, dtypes, strict=True)
    ):
        return None
    n, width = len(cands), len(cands.sources)
    rows = n + m
    query, items = np.empty(rows, np.int32), np.empty(rows, np.int32)
    score = np.empty(rows, np.float32)
    scores, ranks = np.empty((rows, width + 1), np.float32), np.empty((rows, width + 1), np.int16)
    info = np.zeros(3, np.int64)
    done = library.below_rows(
        n,
        cands.n_queries,
        width,
        *(address(a) for a in wanted),
        m,
        *(address(a) for a in parts),
        *(address(a) for a in (query, items, score, scores, ranks, info)),
    )
    if done != 0:
        return None
    held, repeated, stands = info.tolist()
    if stands:
        query, items, score = cands.query, cands.items, cands.score
    else:
        query, items, score = query[:held], items[:held], score[:held]
    return Candidates(
        cands.n_queries,
        (*cands.sources, name),
        query,
        items,
        score,
        scores[:held],
        ranks[:held],
        cands.distinct and not repeated,
    )


def merged_rows(
    library: ctypes.CDLL,
    sources: tuple[str, ...],
    proposed: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    sizes: list[int],
    weights: np.ndarray,
    n_queries: int,
    n_items: int,
    rrf_k: float,
) -> Candidates | None:
    """``retrieval.merge.merge``'s rows, in (query, item) order with their fused scores, in
    one compiled pass over the sources' concatenated proposals (``proposed``: query, items,
    scores, ranks): ~20 numpy calls a request (the keys, their sort and runs, the scatters,
    the sum), ~145 µs of a batch of 8's ~2.3 ms (§148). None where the pass does not read
    them (other dtypes, a query or item out of range): numpy's path answers (and raises where
    it does)."""
    m = len(proposed[1])
    if any(
        a.shape != (m,) or a.dtype != d for a, d in zip(proposed, _PROPOSAL_DTYPES, strict=True)
    ):
        return None
    if weights.dtype != np.float64 or len(weights) != len(sources) or len(sizes) != len(sources):
        return None
    # held here until the call returns: a temporary's memory would be freed before it reads it
    proposed = tuple(np.ascontiguousarray(a) for a in proposed)
    counts, weights = np.asarray(sizes, np.int64), np.ascontiguousarray(weights)
    width = len(sources)
    query, items = np.empty(m, np.int32), np.empty(m, np.int32)
    fused = np.empty(m, np.float32)
    scores, ranks = np.empty((m, width), np.float32), np.empty((m, width), np.int16)
    held = library.merged_rows(
        m,
        width,
        address(counts),
        address(weights),
        rrf_k,
        *(address(a) for a in proposed),
        n_queries,
        n_items,
        *(address(a) for a in (query, items, fused, scores, ranks)),
    )
    if held < 0:
        return None
    return Candidates(
        n_queries,
        sources,
        query[:held],
        items[:held],
        fused[:held],
        scores[:held],
        ranks[:held],
        distinct=True,
    )


def rescored_rows(library: ctypes.CDLL, cands: Candidates, score: np.ndarray) -> Candidates | None:
    """``Candidates.rescored``'s rows in one compiled pass: a stable radix sort by the fused
    score, then by query and the new score, and the columns gathered, where numpy sorts twice
    and takes each column (~175 µs of a batch of 8's ~2.3 ms, §148). None where the pass does
    not read the columns (other dtypes, not row-major, lengths that disagree, a score per row
    missing) or a query is negative: numpy's path answers."""
    wanted = (cands.query, cands.items, cands.score, cands.source_scores, cands.source_ranks)
    dtypes = (np.int32, np.int32, np.float32, np.float32, np.int16)
    if not _agrees(cands) or score.shape != (len(cands),) or score.dtype != np.float32:
        return None
    if not score.flags.c_contiguous or any(
        a.dtype != d or not a.flags.c_contiguous for a, d in zip(wanted, dtypes, strict=True)
    ):
        return None
    n, width = len(cands), len(cands.sources)
    query, items = np.empty(n, np.int32), np.empty(n, np.int32)
    ordered = np.empty(n, np.float32)
    scores, ranks = np.empty((n, width), np.float32), np.empty((n, width), np.int16)
    done = library.rescored_rows(
        n,
        width,
        *(address(a) for a in (cands.query, cands.items, cands.score, score)),
        *(address(a) for a in (cands.source_scores, cands.source_ranks)),
        *(address(a) for a in (query, items, ordered, scores, ranks)),
    )
    if done != 0:
        return None
    return Candidates(
        cands.n_queries, cands.sources, query, items, ordered, scores, ranks, cands.distinct
    )


def static_rows(
    library: ctypes.CDLL,
    exclude: sparse.csr_array,
    heads: list[np.ndarray],
    head_scores: list[np.ndarray],
    quotas: list[int],
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] | None:
    """``pipeline.training.static_proposals``' proposals (per source: query, items, scores,
    ranks) in one compiled pass over the exclusions' rows, where numpy codes the heads among
    the batch's exclusions and counts the kept cells in a grid (~40 numpy calls, ~125 µs of a
    batch of 8's ~2 ms, §148). None where the pass does not read them (offsets or columns
    neither int32 nor int64, scores not float32) or an item is out of range: numpy's path
    answers."""
    arrays = _csr(exclude, None)
    if arrays is None or any(h.dtype.kind not in "iu" for h in heads):
        return None
    if any(s.dtype != np.float32 for s in head_scores):
        return None
    n = exclude.shape[0]
    every = np.concatenate(heads).astype(np.int64, copy=False)
    scores = np.ascontiguousarray(np.concatenate(head_scores))
    widths = np.array([len(h) for h in heads], np.int64)
    wanted = np.array(quotas, np.int64)
    room = n * int(np.minimum(widths, wanted.clip(min=0)).sum())
    query, items = np.empty(room, np.int32), np.empty(room, np.int32)
    kept, ranks = np.empty(room, np.float32), np.empty(room, np.int16)
    counts = np.zeros(len(heads), np.int64)
    held = library.static_rows(
        n,
        arrays[0],
        arrays[1],
        arrays[3],
        arrays[4],
        exclude.shape[1],
        len(heads),
        *(address(a) for a in (widths, wanted, every, scores)),
        room,
        *(address(a) for a in (query, items, kept, ranks, counts)),
    )
    if held < 0:
        return None
    ends = counts.cumsum()
    return [
        (query[a:b], items[a:b], kept[a:b], ranks[a:b])
        for a, b in zip((ends - counts).tolist(), ends.tolist(), strict=True)
    ]
