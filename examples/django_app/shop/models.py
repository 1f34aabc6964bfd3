from django.db import models


class Order(models.Model):
    email = models.EmailField()
    item = models.CharField(max_length=100)
    quantity = models.PositiveIntegerField(default=1)
    # the id of the job that sends the receipt: known before the transaction commits
    receipt_job = models.CharField(max_length=64, blank=True)
