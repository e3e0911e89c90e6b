/* OpenMPI's MPI_Allreduce on the emulated cluster, the counterpart of gan-dist-bench --peer
 * (bench/DistBench/Peer.swift): the same sizes, repetitions and timing. For each size a barrier
 * (MPI_Barrier), then MPI_Allreduce(MPI_IN_PLACE, float, MPI_SUM) timed on rank 0; rank 0 prints
 * one JSON line per size with the median over the repetitions. The library chooses its own
 * algorithm per size and world (OpenMPI's `tuned` component), as users get it.
 *
 *   mpicc -O2 -o allreduce bench/mpi/allreduce.c && mpirun -np 4 ./allreduce
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static const long SIZES[] = {65536, 262144, 1L << 20, 4L << 20, 16L << 20, 64L << 20};
static const long STATISTICS[] = {64, 512, 4096};

/* About 128 MiB moved per size, from 2 to 20 repetitions (50 for the statistics' sizes). */
static int repeats(long bytes) {
    if (bytes <= 4096) return 50;
    long r = (128L << 20) / bytes;
    return (int)(r < 2 ? 2 : r > 20 ? 20 : r);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void measure(const char *kind, long bytes, int rank, int ranks) {
    long n = bytes / 4;
    float *buf = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (long i = 0; i < n; i++) buf[i] = (float)((rank + 1) * 1e-3 * ((i % 17) - 8));
    int reps = repeats(bytes);
    double *t = malloc(sizeof(double) * (size_t)reps);
    MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);   /* warm-up */
    for (int k = 0; k < reps; k++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        t[k] = MPI_Wtime() - t0;
    }
    if (rank == 0) {
        qsort(t, (size_t)reps, sizeof(double), cmp);
        printf("{\"bytes\":%ld,\"impl\":\"openmpi\",\"kind\":\"%s\",\"median_s\":%.9f,\"min_s\":%.9f,\"ranks\":%d,\"repeats\":%d}\n",
               bytes, kind, t[reps / 2], t[0], ranks, reps);
        fflush(stdout);
    }
    free(t);
    free(buf);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    for (size_t i = 0; i < sizeof STATISTICS / sizeof *STATISTICS; i++) measure("statistics", STATISTICS[i], rank, ranks);
    for (size_t i = 0; i < sizeof SIZES / sizeof *SIZES; i++) measure("allreduce", SIZES[i], rank, ranks);
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    return 0;
}
