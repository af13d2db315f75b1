"""webhooks domain: endpoints, the event outbox, signed delivery with retries."""
