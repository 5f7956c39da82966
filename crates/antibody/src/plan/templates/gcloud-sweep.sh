
# Sweeps of {{projects}}: Cloud Scheduler calls /sweep ({{schedule}}), signed as the service account and verified like
# a push, so no instance has to stay up for a timer (the service's own timer is off: ANTIBODY_SWEEP_MINUTES=0).
gcloud scheduler jobs describe antibody-sweep --location "$REGION" --project "$PROJECT" >/dev/null 2>&1 ||
  gcloud scheduler jobs create http antibody-sweep --location "$REGION" --project "$PROJECT" \
    --schedule "{{schedule}}" --uri "$URL/sweep" --http-method POST --attempt-deadline 30m \
    --oidc-service-account-email "$SA" --oidc-token-audience "$URL"
