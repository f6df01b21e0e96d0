"""May this call be placed now? Rules from compliance_rules.yaml, the debtor's zones, the pure decision, and the one transaction that accounts for it."""
