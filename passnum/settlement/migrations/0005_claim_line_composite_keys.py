"""Claim lines: two composite foreign keys instead of five single ones, and no copy of the voucher's program.

(claim, funder) → claims (id, funder) and (redemption, voucher) → redemptions (id, voucher): fewer checks at the
commit of a settlement date (each costs about 3 µs a line), and stronger ones (a line's funder is its claim's, its
redemption is its voucher's)."""

import django.db.models.deletion
from django.db import migrations, models

import passnum.common.constraints


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_remove_invitation_invitation_role_valid_and_more"),
        ("settlement", "0004_claim_line_fewer_indexes"),
        ("vouchers", "0007_voucher_hot_updates"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="claim",
            constraint=models.UniqueConstraint(fields=("id", "funder"), name="claim_id_funder_unique"),
        ),
        migrations.AlterField(
            model_name="claimline",
            name="claim",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="lines",
                to="settlement.claim",
            ),
        ),
        migrations.AlterField(
            model_name="claimline",
            name="funder",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="accounts.organisation",
            ),
        ),
        migrations.AlterField(
            model_name="claimline",
            name="voucher",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="claim_lines",
                to="vouchers.voucher",
            ),
        ),
        migrations.AlterField(
            model_name="claimline",
            name="redemption",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="claim_lines",
                to="vouchers.redemption",
            ),
        ),
        migrations.RemoveField(model_name="claimline", name="program"),
        migrations.AddConstraint(
            model_name="claimline",
            constraint=passnum.common.constraints.CompositeForeignKey(
                fields=["claim", "funder"],
                name="claim_line_claim_fk",
                to="settlement.Claim",
                to_fields=["id", "funder"],
            ),
        ),
        migrations.AddConstraint(
            model_name="claimline",
            constraint=passnum.common.constraints.CompositeForeignKey(
                fields=["redemption", "voucher"],
                name="claim_line_redemption_fk",
                to="vouchers.Redemption",
                to_fields=["id", "voucher"],
            ),
        ),
    ]
