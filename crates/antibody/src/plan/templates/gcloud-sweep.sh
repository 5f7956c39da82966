
# Sweeps of {{projects}}: Cloud Scheduler calls /sweep ({{schedule}}), signed as the service account and verified like
# a push, so no instance has to stay up for a timer (the service has none: ANTIBODY_CPU=request).
SCHEDULE=(--schedule "{{schedule}}" --uri "$URL/sweep" --http-method POST --attempt-deadline {{deadline}}s
  --oidc-service-account-email "$SA" --oidc-token-audience "$URL")
if gcloud scheduler jobs describe {{SERVICE}}-sweep --location "$REGION" --project "$PROJECT" >/dev/null 2>&1; then
  gcloud scheduler jobs update http {{SERVICE}}-sweep --location "$REGION" --project "$PROJECT" "${SCHEDULE[@]}"
else
  gcloud scheduler jobs create http {{SERVICE}}-sweep --location "$REGION" --project "$PROJECT" "${SCHEDULE[@]}"
fi
