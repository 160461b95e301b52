//! In-process hashing throughput per algorithm and per read-buffer size, on an in-memory buffer
//! and on a file in the page cache. `cargo bench -p checksum`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a benchmark: a failed setup step fails the run

use std::hint::black_box;

use checksum::{Algo, hash_bytes, hash_reader};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn algorithms(c: &mut Criterion) {
    let data = vec![0x5au8; 8 << 20];
    let mut group = c.benchmark_group("hash_bytes_8MiB");
    group.throughput(Throughput::Bytes(data.len() as u64));
    for algo in Algo::ALL {
        group.bench_function(algo.tag(), |b| b.iter(|| hash_bytes(algo, black_box(&data))));
    }
    group.finish();
}

fn file(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("f");
    std::fs::write(&path, vec![0xa5u8; 64 << 20]).expect("write bench file");
    let mut group = c.benchmark_group("file_64MiB");
    group.throughput(Throughput::Bytes(64 << 20));
    group.sample_size(20);
    group.bench_function("hash_file_xxh128", |b| {
        b.iter(|| checksum::hash_file(Algo::Xxh128, &path).expect("hash"))
    });
    group.bench_function("plain_read", |b| {
        b.iter(|| {
            let file = std::fs::File::open(&path).expect("open");
            std::io::copy(
                &mut std::io::BufReader::with_capacity(checksum::BUF_SIZE, file),
                &mut std::io::sink(),
            )
            .expect("read")
        })
    });
    group.bench_function("hash_reader_xxh3", |b| {
        b.iter(|| hash_reader(Algo::Xxh3, std::fs::File::open(&path).expect("open")).expect("hash"))
    });
    group.finish();
}

criterion_group!(benches, algorithms, file);
criterion_main!(benches);
