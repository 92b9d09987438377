//! virtnet-host (placeholder; being written).
