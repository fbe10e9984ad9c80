/* The ECF sums of SIGReg on the CPU: Σ_n cos(t_m u_nk), Σ_n sin(t_m u_nk) and their
 * backward, for evenly spaced knots t_m = m·dt (m = 1..T).
 *
 * One sine/cosine pair per (n, k) gives the step e^{iθ}, θ = dt·u; the knots follow by the
 * angle-addition recurrence e^{i(m+1)θ} = e^{imθ}·e^{iθ} (four multiply-adds), restarted
 * from a directly computed e^{imθ} at m = 1 + restart, 1 + 2·restart, ... so that the
 * rounding error, which grows about linearly in the number of rotations, stays bounded (see
 * ecf.py). The backward is Horner's rule in e^{iθ} (no restarts, see bwd_rows).
 * Lanes of k a vector (GCC vector extensions; one register: 16 with AVX-512, 8 with AVX2,
 * 4 with SSE), a few rows of n at a time for independent dependency chains, float32 partial
 * sums over at most 128 rows flushed into float64. Threads split k: OpenMP's when built with
 * -fopenmp (the pool torch already runs), else POSIX threads.
 *
 * Built on first use by lejepa_viz/univariate/_native.py with the machine's C compiler
 * (-O3 -march=native) and cached on disk; no Python or torch headers are needed.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Lanes per vector and rows per group, by instruction set (the build uses -march=native):
 * one register a vector, and as many independent rows as the registers hold (AVX-512 has 32
 * vector registers, AVX2 and SSE 16). Sizes wider than the machine's registers spill. */
#ifndef W
#if defined(__AVX512F__)
#define W 16
#elif defined(__AVX__)
#define W 8
#else
#define W 4
#endif
#endif
#ifndef FWD_ROWS
#if defined(__AVX512F__)
#define FWD_ROWS 4
#else
#define FWD_ROWS 2
#endif
#endif
#define FLUSH 32      /* groups of rows summed in float32 before a float64 flush */
#define MAX_T 1024    /* knots per call (the Python side checks) */
#ifndef BWD_ROWS
#if defined(__AVX512F__)
#define BWD_ROWS 8 /* rows per Horner group: independent chains of two multiply-adds */
#else
#define BWD_ROWS 4
#endif
#endif
#define BIG 8192.0f   /* |angle| beyond which the polynomial's range reduction is not trusted */

typedef float vf __attribute__((vector_size(4 * W)));
typedef int32_t vi __attribute__((vector_size(4 * W)));

#define INLINE static inline __attribute__((always_inline))

INLINE vf splat(float a) { return (vf){0} + a; }

INLINE vf load(const float *p, int n) {
    vf v = {0};
    memcpy(&v, p, (size_t)n * sizeof(float));
    return v;
}

INLINE void store(float *p, vf v, int n) { memcpy(p, &v, (size_t)n * sizeof(float)); }

/* sin and cos of every lane: x = q·π/2 + r with |r| ≤ π/4 (three-part Cody–Waite), the
 * minimax polynomials of Cephes' sinf/cosf on r (max error ≈ 1 ulp), then the quadrant. */
INLINE void sincos_v(vf x, vf *s, vf *c) {
    const vf magic = splat(12582912.0f); /* 1.5·2^23: adding and subtracting rounds to integer */
    vf q = (x * splat(0.636619772367581343f) + magic) - magic;
    vf r = x - q * splat(1.5703125f);
    r = r - q * splat(4.837512969970703125e-4f);
    r = r - q * splat(7.54978995489188216e-8f);
    vf r2 = r * r;
    vf sp = r + r * r2 * (splat(-1.6666654611e-1f) +
                          r2 * (splat(8.3321608736e-3f) + r2 * splat(-1.9515295891e-4f)));
    vf cp = splat(1.0f) - splat(0.5f) * r2 +
            r2 * r2 * (splat(4.166664568298827e-2f) +
                       r2 * (splat(-1.388731625493765e-3f) + r2 * splat(2.443315711809948e-5f)));
    vi qi = __builtin_convertvector(q, vi);
    vi odd = -(qi & 1); /* all ones in quadrants 1 and 3: sine and cosine swap */
    vi sb = ((vi)sp & ~odd) | ((vi)cp & odd);
    vi cb = ((vi)cp & ~odd) | ((vi)sp & odd);
    *s = (vf)(sb ^ ((qi & 2) << 30));       /* sin < 0 in quadrants 2, 3 */
    *c = (vf)(cb ^ (((qi + 1) & 2) << 30)); /* cos < 0 in quadrants 1, 2 */
}

INLINE int any_big(vf x) {
    vi big = (vi)(x > splat(BIG)) | (vi)(x < splat(-BIG));
    int32_t any = 0;
    for (int l = 0; l < W; l++) any |= big[l];
    return any;
}

typedef struct {
    const float *u; /* (rows, ldu), columns k0..k1 used */
    int64_t rows, ldu, k0, k1, K;
    double dt;
    int32_t T, restart;
    double *cos_out, *sin_out; /* forward: (T, K) float64, accumulated into */
    const float *a, *b;        /* backward: (T, K) float32 coefficients of cos and sin */
    float *grad;               /* backward: (rows, ldg) */
    int64_t ldg;
} job_t;

/* e^{i t_m θ} for one vector of u, m = m0 .. m0 + len - 1: start (c, s) = e^{i t_m0 θ}. */
INLINE void start(vf u, double dt, int m, vf *c, vf *s) { sincos_v(u * splat((float)(m * dt)), s, c); }

/* ---------------------------------------------------------------- forward */

/* G rows (G constant at each call site) of one block of n lanes: add cos/sin to fc/fs. */
INLINE void fwd_rows(const job_t *j, const float *const *row, int G, int n, vf *fc, vf *fs) {
    vf c1[FWD_ROWS], s1[FWD_ROWS], c[FWD_ROWS], s[FWD_ROWS];
    vf step = splat((float)j->dt);
    for (int g = 0; g < G; g++) {
        sincos_v(load(row[g], n) * step, &s1[g], &c1[g]);
    }
    for (int m0 = 1; m0 <= j->T; m0 += j->restart) { /* knots m0 .. m0 + restart - 1 */
        int m_end = m0 + j->restart - 1 < j->T ? m0 + j->restart - 1 : j->T;
        for (int g = 0; g < G; g++) {
            if (m0 == 1) {
                c[g] = c1[g];
                s[g] = s1[g];
            } else {
                start(load(row[g], n), j->dt, m0, &c[g], &s[g]);
            }
        }
        for (int m = m0;; m++) {
            vf cs = c[0], ss = s[0];
            for (int g = 1; g < G; g++) {
                cs += c[g];
                ss += s[g];
            }
            fc[m - 1] += cs;
            fs[m - 1] += ss;
            if (m == m_end) break;
            for (int g = 0; g < G; g++) {
                vf cn = c[g] * c1[g] - s[g] * s1[g];
                s[g] = s[g] * c1[g] + c[g] * s1[g];
                c[g] = cn;
            }
        }
    }
}

/* Rows whose angles are too large for the polynomial: double precision, one lane at a time. */
static void fwd_exact(const job_t *j, const float *row, int n, double *dc, double *ds) {
    for (int l = 0; l < n; l++)
        for (int m = 1; m <= j->T; m++) {
            double a = (double)(float)(m * j->dt) * (double)row[l];
            dc[(m - 1) * W + l] += cos(a);
            ds[(m - 1) * W + l] += sin(a);
        }
}

static void fwd_block(const job_t *j, int64_t k, int n, vf *fc, vf *fs, double *dc, double *ds) {
    const int T = j->T;
    const vf widest = splat((float)(T * j->dt)); /* u times the largest knot */
    memset(dc, 0, sizeof(double) * W * T);
    memset(ds, 0, sizeof(double) * W * T);
    int64_t i = 0;
    while (i < j->rows) {
        memset(fc, 0, sizeof(vf) * T);
        memset(fs, 0, sizeof(vf) * T);
        for (int group = 0; group < FLUSH && i < j->rows; group++) {
            const float *row[FWD_ROWS];
            int G = j->rows - i >= FWD_ROWS ? FWD_ROWS : 1;
            for (int g = 0; g < G; g++) row[g] = j->u + (i + g) * j->ldu + k;
            int big = 0;
            for (int g = 0; g < G; g++) big |= any_big(load(row[g], n) * widest);
            if (big) {
                for (int g = 0; g < G; g++) fwd_exact(j, row[g], n, dc, ds);
            } else if (G == FWD_ROWS) {
                fwd_rows(j, row, FWD_ROWS, n, fc, fs);
            } else {
                fwd_rows(j, row, 1, n, fc, fs);
            }
            i += G;
        }
        for (int m = 0; m < T; m++)
            for (int l = 0; l < W; l++) {
                dc[m * W + l] += fc[m][l];
                ds[m * W + l] += fs[m][l];
            }
    }
    for (int m = 0; m < T; m++)
        for (int l = 0; l < n; l++) {
            j->cos_out[m * j->K + k + l] += dc[m * W + l];
            j->sin_out[m * j->K + k + l] += ds[m * W + l];
        }
}

static void *fwd_job(void *arg) {
    const job_t *j = arg;
    vf *f = aligned_alloc(64, sizeof(vf) * 2 * j->T);
    double *d = malloc(sizeof(double) * 2 * W * j->T);
    if (f && d)
        for (int64_t k = j->k0; k < j->k1; k += W) {
            int n = j->k1 - k < W ? (int)(j->k1 - k) : W;
            if (n == W)
                fwd_block(j, k, W, f, f + j->T, d, d + W * j->T);
            else
                fwd_block(j, k, n, f, f + j->T, d, d + W * j->T);
        }
    int failed = !(f && d);
    free(f);
    free(d);
    return failed ? (void *)1 : NULL;
}

/* ---------------------------------------------------------------- backward */

/* grad[n, k] = Σ_m a[m, k]·cos(t_m u) + b[m, k]·sin(t_m u) = Re Σ_m (a_m − i·b_m)·z^m with
 * z = e^{iθ}, for G rows of one block, by Horner's rule in z: four multiply-adds a knot, one
 * sine/cosine pair per (n, k), no restarts (Horner's rule on |z| = 1 is backward stable: the
 * error is at most about T·2^-24·Σ_m |a_m − i·b_m|, plus the phase error m·δ of z^m). */
INLINE void bwd_rows(const job_t *j, const float *const *row, float *const *out, int G, int n,
                     const vf *a, const vf *b) {
    vf zr[BWD_ROWS], zi[BWD_ROWS], pr[BWD_ROWS], pi[BWD_ROWS];
    vf step = splat((float)j->dt);
    const int T = j->T;
    for (int g = 0; g < G; g++) {
        sincos_v(load(row[g], n) * step, &zi[g], &zr[g]);
        pr[g] = a[T - 1];
        pi[g] = -b[T - 1];
    }
    for (int m = T - 2; m >= 0; m--)
        for (int g = 0; g < G; g++) {
            vf r = pr[g] * zr[g] - pi[g] * zi[g] + a[m];
            pi[g] = pr[g] * zi[g] + pi[g] * zr[g] - b[m];
            pr[g] = r;
        }
    for (int g = 0; g < G; g++) store(out[g], pr[g] * zr[g] - pi[g] * zi[g], n);
}

static void bwd_exact(const job_t *j, const float *row, float *out, int64_t k, int n) {
    for (int l = 0; l < n; l++) {
        double acc = 0.0;
        for (int m = 1; m <= j->T; m++) {
            double a = (double)(float)(m * j->dt) * (double)row[l];
            acc += j->a[(m - 1) * j->K + k + l] * cos(a) + j->b[(m - 1) * j->K + k + l] * sin(a);
        }
        out[l] = (float)acc;
    }
}

static void bwd_block(const job_t *j, int64_t k, int n, vf *a, vf *b) {
    const int T = j->T;
    const vf widest = splat((float)(T * j->dt));
    for (int m = 0; m < T; m++) {
        a[m] = load(j->a + m * j->K + k, n);
        b[m] = load(j->b + m * j->K + k, n);
    }
    int64_t i = 0;
    while (i < j->rows) {
        const float *row[BWD_ROWS];
        float *out[BWD_ROWS];
        int G = j->rows - i >= BWD_ROWS ? BWD_ROWS : 1;
        for (int g = 0; g < G; g++) {
            row[g] = j->u + (i + g) * j->ldu + k;
            out[g] = j->grad + (i + g) * j->ldg + k;
        }
        int big = 0;
        for (int g = 0; g < G; g++) big |= any_big(load(row[g], n) * widest);
        if (big) {
            for (int g = 0; g < G; g++) bwd_exact(j, row[g], out[g], k, n);
        } else if (G == BWD_ROWS) {
            bwd_rows(j, row, out, BWD_ROWS, n, a, b);
        } else {
            bwd_rows(j, row, out, 1, n, a, b);
        }
        i += G;
    }
}

static void *bwd_job(void *arg) {
    const job_t *j = arg;
    vf *f = aligned_alloc(64, sizeof(vf) * 2 * j->T);
    if (f)
        for (int64_t k = j->k0; k < j->k1; k += W) {
            int n = j->k1 - k < W ? (int)(j->k1 - k) : W;
            if (n == W)
                bwd_block(j, k, W, f, f + j->T);
            else
                bwd_block(j, k, n, f, f + j->T);
        }
    free(f);
    return f ? NULL : (void *)1;
}

/* ---------------------------------------------------------------- entry points */

static int run(job_t base, int threads, void *(*fn)(void *)) {
    int64_t blocks = (base.K + W - 1) / W;
    if (threads > blocks) threads = (int)blocks;
    if (threads < 1) threads = 1;
    job_t jobs[256];
#ifndef _OPENMP
    pthread_t ids[256];
#endif
    if (threads > 256) threads = 256;
    for (int t = 0; t < threads; t++) {
        jobs[t] = base;
        jobs[t].k0 = W * (blocks * t / threads);
        jobs[t].k1 = W * (blocks * (t + 1) / threads);
        if (jobs[t].k1 > base.K) jobs[t].k1 = base.K;
    }
    int failed = 0;
#ifdef _OPENMP
    /* The process's OpenMP pool is torch's own (same libgomp): its threads, still spinning
     * after torch's matrix product, take this work at once instead of competing with it. */
#pragma omp parallel for num_threads(threads) schedule(static, 1) reduction(| : failed)
    for (int t = 0; t < threads; t++) failed |= fn(&jobs[t]) != NULL;
#else
    int started = 0;
    for (int t = 1; t < threads; t++, started++)
        if (pthread_create(&ids[t], NULL, fn, &jobs[t])) break;
    failed |= fn(&jobs[0]) != NULL;
    for (int t = 1; t <= started; t++) {
        void *r;
        pthread_join(ids[t], &r);
        failed |= r != NULL;
    }
    for (int t = started + 1; t < threads; t++) failed |= fn(&jobs[t]) != NULL;
#endif
    return failed;
}

/* Σ_n cos(t_m u[n, k]) and Σ_n sin(...) added into cos_out, sin_out of shape (T, K). */
int lv_ecf_forward(const float *u, int64_t rows, int64_t K, int64_t ldu, double dt, int32_t T,
                   int32_t restart, double *cos_out, double *sin_out, int32_t threads) {
    if (T < 1 || T > MAX_T || restart < 2) return 2;
    job_t j = {u, rows, ldu, 0, K, K, dt, T, restart, cos_out, sin_out, NULL, NULL, NULL, 0};
    return run(j, threads, fwd_job);
}

/* grad[n, k] = Σ_m a[m, k]·cos(t_m u[n, k]) + b[m, k]·sin(t_m u[n, k]); a, b of shape (T, K). */
int lv_ecf_backward(const float *u, int64_t rows, int64_t K, int64_t ldu, double dt, int32_t T,
                    const float *a, const float *b, float *grad, int64_t ldg, int32_t threads) {
    if (T < 1 || T > MAX_T) return 2;
    job_t j = {u, rows, ldu, 0, K, K, dt, T, 0, NULL, NULL, a, b, grad, ldg};
    return run(j, threads, bwd_job);
}
