"""How many lines to dial: pacers (progressive, VICIdial ADAPT_TAPERED, predictive), the estimator, the live floor views, the simulator."""
