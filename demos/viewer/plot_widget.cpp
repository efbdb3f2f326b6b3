#include "plot_widget.h"

#include <QPainter>
#include <QPainterPath>

#include <algorithm>

PlotWidget::PlotWidget(const QString &title) {
    setWindowTitle(title);
    setMinimumHeight(60);
}

void PlotWidget::set_curve(const float *y, int n) {
    y_ = QVector<float>(y, y + n);
    for (float v : y_) {
        lo_ = std::min(lo_, v);
        hi_ = std::max(hi_, v);
    }
    updates_++;
    update();  // painted on the next paint event: many updates, one repaint
}

void PlotWidget::paintEvent(QPaintEvent *) {
    QPainter p(this);
    p.setRenderHint(QPainter::Antialiasing);
    QRectF area = QRectF(rect()).adjusted(4, 18, -4, -4);
    p.fillRect(rect(), QColor(24, 26, 30));
    p.setPen(QColor(70, 74, 82));
    p.drawRect(area);
    double zero = area.bottom() - (0 - lo_) / (hi_ - lo_) * area.height();
    p.drawLine(QPointF(area.left(), zero), QPointF(area.right(), zero));
    p.setPen(QColor(200, 200, 200));
    p.drawText(QPointF(6, 13), windowTitle());
    if (y_.size() < 2) return;
    QPainterPath path;
    for (int i = 0; i < y_.size(); i++) {
        QPointF pt(area.left() + area.width() * i / (y_.size() - 1),
                   area.bottom() - (y_[i] - lo_) / (hi_ - lo_) * area.height());
        if (i == 0) path.moveTo(pt); else path.lineTo(pt);
    }
    p.setPen(QPen(QColor(90, 190, 255), 1.5));
    p.drawPath(path);
}
