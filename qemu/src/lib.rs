//! virtnet-qemu (placeholder; being written).
