//! cbflow-bids
