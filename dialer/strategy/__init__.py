"""Who to call first: features, the propensity model, the strategy table and hopper ranking."""
