// Downtime pages: reason coding and live stop durations and costs.
