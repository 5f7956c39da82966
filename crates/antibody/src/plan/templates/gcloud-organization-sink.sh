
# The organization's audit entries: an aggregated sink (every folder and project under the organization, none
# intercepted) into a Pub/Sub topic, pushed to the service with OIDC tokens; after {{attempts}} failed deliveries a
# message goes to the dead-letter topic instead of being lost. No Eventarc trigger: the sink already carries this
# project's entries, so each change arrives once.
PUBSUB_AGENT="service-$NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"
for topic in {{TOPIC}} {{TOPIC}}-dead-letter; do
  gcloud pubsub topics describe "$topic" --project "$PROJECT" >/dev/null 2>&1 ||
    gcloud pubsub topics create "$topic" --project "$PROJECT"
done
FILTER=$(cat <<'FILTER_END'
{{filter}}
FILTER_END
)
if gcloud logging sinks describe {{TOPIC}} --organization {{organization}} >/dev/null 2>&1; then
  gcloud logging sinks update {{TOPIC}} --organization {{organization}} --log-filter "$FILTER"
else
  gcloud logging sinks create {{TOPIC}} "pubsub.googleapis.com/projects/$PROJECT/topics/{{TOPIC}}" \
    --organization {{organization}} --include-children --log-filter "$FILTER"
fi
WRITER=$(gcloud logging sinks describe {{TOPIC}} --organization {{organization}} --format 'value(writerIdentity)')
gcloud pubsub topics add-iam-policy-binding {{TOPIC}} --project "$PROJECT" --member "$WRITER" \
  --role roles/pubsub.publisher >/dev/null
# Pub/Sub signs the pushes as $SA, forwards undeliverable messages and acknowledges them at the source.
gcloud iam service-accounts add-iam-policy-binding "$SA" --project "$PROJECT" --member "serviceAccount:$PUBSUB_AGENT" \
  --role roles/iam.serviceAccountTokenCreator >/dev/null
gcloud pubsub topics add-iam-policy-binding {{TOPIC}}-dead-letter --project "$PROJECT" \
  --member "serviceAccount:$PUBSUB_AGENT" --role roles/pubsub.publisher >/dev/null
gcloud pubsub subscriptions describe {{TOPIC}}-push --project "$PROJECT" >/dev/null 2>&1 ||
  gcloud pubsub subscriptions create {{TOPIC}}-push --project "$PROJECT" --topic {{TOPIC}} \
    --push-endpoint "$URL" --push-auth-service-account "$SA" --push-auth-token-audience "$URL" \
    --ack-deadline 60 --dead-letter-topic {{TOPIC}}-dead-letter --max-delivery-attempts {{attempts}}
gcloud pubsub subscriptions add-iam-policy-binding {{TOPIC}}-push --project "$PROJECT" \
  --member "serviceAccount:$PUBSUB_AGENT" --role roles/pubsub.subscriber >/dev/null
