gcloud eventarc triggers describe {{name}} --project "$PROJECT" --location global >/dev/null 2>&1 ||
  gcloud eventarc triggers create {{name}} --project "$PROJECT" --location global \
    --destination-run-service {{SERVICE}} --destination-run-region "$REGION" \
    --event-filters type=google.cloud.audit.log.v1.written \
    --event-filters serviceName={{service}} --event-filters methodName={{method}} \
    --service-account "$SA"
