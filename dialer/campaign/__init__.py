"""Campaigns: the YAML file (segments, scripts, dial modes, retries) and the debtor and payment CSV imports."""
