//! virtnet-conf (placeholder; being written).
