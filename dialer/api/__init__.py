"""The lender's way in and out: the REST API (an aiohttp sub-application, `dialer.api.app.api_app`) and outcome
webhooks delivered from the durable outbox (`dialer.api.webhooks`)."""
