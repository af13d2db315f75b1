"""Daily reconciliation: money per currency and the day's orders, for partners and operator."""
