from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0002_calllog_state"),
    ]

    operations = [
        migrations.AddField(
            model_name="calllog",
            name="transcript_deleted_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
    ]
